#!/usr/bin/env bash
# Installs, from Debian 12 packages only, whatever meshtel needs that is missing.
# Usage: scripts/install-deps.sh [build|test]   (default: test — build deps plus test peers)
# Works without a terminal; needs root (or sudo) only when something is missing.
set -euo pipefail

mode="${1:-test}"

build_packages=(
  build-essential cmake ninja-build ccache pkg-config
  protobuf-compiler libprotobuf-dev libgrpc++-dev protobuf-compiler-grpc
  libboost-dev libboost-system-dev
  librocksdb-dev prometheus-cpp-dev libspdlog-dev libfmt-dev libabsl-dev libyaml-cpp-dev
  libsnappy-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev libjemalloc-dev
  libssl-dev
  curl procps python3
)
# Real peers the end-to-end tests run against, the format check, and the fuzzers (clang).
# nginx, haproxy, wrk and hey are the peers and load generators of the proxy tests and benchmarks;
# iptables sets up transparent-mode redirection inside a test network namespace.
# python3-prometheus-client brings a strict OpenMetrics parser the end-to-end test runs.
test_packages=(prometheus clang-format clang libclang-rt-14-dev nginx haproxy wrk hey iptables
               python3-prometheus-client)

packages=("${build_packages[@]}")
if [ "$mode" = "test" ]; then packages+=("${test_packages[@]}"); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
