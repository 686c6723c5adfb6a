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
  libsnappy-dev liblz4-dev zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev libjemalloc-dev
  libssl-dev
  curl procps python3
)
# Real peers the end-to-end tests run against, the format check, and the fuzzers (clang).
# nginx, haproxy, wrk and hey are the peers and load generators of the proxy tests and benchmarks;
# iptables sets up transparent-mode redirection inside a test network namespace; openssl makes
# the test certificates of the TLS tests.
# python3-prometheus-client brings a strict OpenMetrics parser the end-to-end test runs.
test_packages=(prometheus openssl clang-format clang libclang-rt-14-dev nginx haproxy wrk hey
               iptables python3-prometheus-client)

packages=("${build_packages[@]}")
if [ "$mode" = "test" ]; then packages+=("${test_packages[@]}"); fi
# Node.js runs the official OpenTelemetry JS SDK (tests/e2e/otel-js) as a client of the OTLP
# receiver. Any node/npm on PATH will do (e.g. a NodeSource build, which bundles npm and
# conflicts with Debian's npm package); only when a command is missing is Debian's package added.
if [ "$mode" = "test" ]; then
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "install-deps: done"
fi

# The OpenTelemetry JS SDK of the end-to-end tests, exactly as package-lock.json pins it (from
# registry.npmjs.org, see tests/e2e/otel-js/.npmrc). `npm ci` wipes and reinstalls, so it runs
# only when node_modules is older than the lock file (npm writes node_modules/.package-lock.json
# after every install).
if [ "$mode" = "test" ]; then
  js_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/e2e/otel-js"
  if [ ! -f "$js_dir/node_modules/.package-lock.json" ] ||
     [ "$js_dir/package-lock.json" -nt "$js_dir/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci in tests/e2e/otel-js"
    (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "install-deps: tests/e2e/otel-js/node_modules up to date"
  fi
fi
