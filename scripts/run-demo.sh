#!/usr/bin/env bash
# The run command (README): installs what is missing from Debian 12 packages, builds, and runs
# meshtel-collector (with its embedded RocksDB in .demo/collector-data) plus a small demo mesh:
#
#   load (20 req/s) ─► frontend-proxy :15006 ─► frontend :18080
#                      frontend-proxy :15001 ─► backend-proxy :15106 ─► backend :18081
#   both proxies ──(records)──► collector :15140, metrics on :15141
#
# Runs in the foreground until Ctrl-C, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh build

build_dir="${MESHTEL_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target meshtel-collector meshtel-proxy meshtel-demo

for port in 15140 15141 15006 15001 15106 15000 15100 18080 18081; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "run-demo: port $port is in use; stop what uses it and try again" >&2
    exit 1
  fi
done

state_dir=.demo
mkdir -p "$state_dir"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "run-demo: stopping"
  for (( i=${#pids[@]}-1; i>=0; i-- )); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "run-demo: stopped (logs in $state_dir/)"
}
trap cleanup EXIT INT TERM

start() {  # start NAME COMMAND...
  local name=$1; shift
  "$@" >"$state_dir/$name.log" 2>&1 &
  pids+=($!)
}

start collector "$build_dir/collector/meshtel-collector" --config deploy/demo/collector.yaml
start backend "$build_dir/deploy/demo/meshtel-demo" backend --listen 127.0.0.1:18081
start backend-proxy "$build_dir/proxy/meshtel-proxy" --config deploy/demo/backend-proxy.yaml
start frontend "$build_dir/deploy/demo/meshtel-demo" frontend --listen 127.0.0.1:18080 \
  --backend 127.0.0.1:15001 --backend-host backend.demo
start frontend-proxy "$build_dir/proxy/meshtel-proxy" --config deploy/demo/frontend-proxy.yaml

for _ in $(seq 1 100); do
  curl -fs http://127.0.0.1:15141/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
if ! curl -fs http://127.0.0.1:15141/readyz >/dev/null 2>&1; then
  echo "run-demo: the collector did not become ready; see $state_dir/collector.log" >&2
  exit 1
fi
sleep 0.5
start load "$build_dir/deploy/demo/meshtel-demo" load --target 127.0.0.1:15006 \
  --host frontend.demo --requests 0 --rate 20 --concurrency 2

cat <<INFO

meshtel demo is running (Ctrl-C stops it):
  collector metrics   http://127.0.0.1:15141/metrics
  collector health    http://127.0.0.1:15141/healthz   http://127.0.0.1:15141/readyz
  the mesh's front    http://127.0.0.1:15006/  (send Host: frontend.demo)
  sidecar stats       http://127.0.0.1:15000/stats/prometheus (frontend)  :15100 (backend)
  logs and data       $state_dir/

Watch the request count grow:
  curl -s http://127.0.0.1:15141/metrics | grep '^istio_requests_total'

INFO
wait "${pids[0]}"
