#!/usr/bin/env bash
# proxy_bench.sh: throughput, latency, CPU and memory of meshtel-proxy against the proxies a user
# would pick instead, all measured in one run on this machine.
#
# Every case fetches the same 1 KiB static file from one origin nginx (1 worker, access log off)
# over keep-alive connections:
#
#   (a) direct         wrk ─► origin nginx
#   (b) nginx          wrk ─► nginx reverse proxy (access_log to a file, upstream keepalive) ─► origin
#   (c) haproxy        wrk ─► haproxy (mode http, option httplog, log to a file via stdout) ─► origin
#   (d) meshtel x1     wrk ─► meshtel-proxy inbound listener ─► origin
#   (e) meshtel x2     wrk ─► proxy A outbound (Host: origin.bench, routed by outbound.routes)
#                          ─► proxy B inbound ─► origin
#
# The proxies of (d) and (e) stream their request records to a live meshtel-collector. The set is
# run once per thread count (BENCH_THREADS, default "1 2"): nginx worker_processes, haproxy
# nbthread and meshtel-proxy io_threads all get that number.
#
# Per case it reports: requests/s, p50 and p99 latency (wrk --latency), non-2xx responses plus
# socket errors, the proxy's CPU seconds (utime + stime from /proc/<pid>/stat) per 1000 requests
# (nginx: master plus workers; (e): both proxies summed, and each one on its own line), the
# collector's CPU per 1000 requests for (d) and (e), and RSS in MiB (VmRSS from /proc/<pid>/status)
# when idle (after start and one check request), after the load, and the peak (VmHWM). With more
# than one run per case (BENCH_RUNS) every figure is the median of the runs. It also prints the
# ratio of (d) to (b) requests/s.
#
# Added latency at a moderate fixed rate, direct (a) against two proxies (e), is measured twice:
#   hey -z Ns -q 200 -c 4   (about 800 requests/s; hey prints latencies in 0.1 ms steps)
#   wrk -c 4 with a 5 ms pause before each request (about 700-770 requests/s; microsecond steps)
# and, at the same rates, the peer of (e): (n) two nginx reverse proxies in a chain
#   wrk ─► nginx reverse proxy 2 (access_log, upstream keepalive) ─► nginx of (b) ─► origin
# so the added latency of two meshtel-proxies is next to what two nginx add on this machine.
#
# Usage (from anywhere; the binaries come from $MESHTEL_BUILD_DIR, default <repo>/build):
#
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMESHTEL_BUILD_TESTS=OFF
#         -DCMAKE_CXX_FLAGS=-Wno-restrict      # GCC 12 at -O3: see docs/benchmarks.md
#   ninja -C build meshtel-proxy meshtel-collector
#   tests/bench/proxy_bench.sh [--quick] [--markdown]
#
#   --quick      smoke run: 2 s per case, 1 run (overridden by the variables below)
#   --markdown   also print the results as markdown tables (for docs/benchmarks.md)
#
# Environment (defaults in brackets):
#   BENCH_SECONDS [10]        duration of each wrk case
#   BENCH_CONNECTIONS [32]    wrk connections
#   BENCH_WRK_THREADS [1]     wrk threads
#   BENCH_RUNS [3]            runs of every case; figures are medians
#   BENCH_THREADS ["1 2"]     proxy worker thread counts to run the set with
#   BENCH_RATE_SECONDS [BENCH_SECONDS]  duration of each fixed-rate run
#   BENCH_HEY_QPS [200]       hey -q (per worker)     BENCH_HEY_WORKERS [4]  hey -c
#   BENCH_KEEP_TMP [0]        1: keep the temp dir (configs, logs, raw outputs)
#   BENCH_PAUSED_COLLECTOR [0]  1: also case (d) with the collector paused (SIGSTOP) during its
#                             measured run: the proxy as alone on the machine, still building and
#                             queueing every record (it drops, and counts, what it cannot send);
#                             (d)'s RSS after the load then includes that backlog's memory
#
# Needs: wrk, hey, nginx, haproxy, curl, procps (Debian packages). Everything listens on
# 127.0.0.1 on free ports, lives in one temp dir, and is stopped on exit (trap).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

quick=0
markdown=0
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --markdown) markdown=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "proxy_bench: unknown argument '$1'; try --help" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=${MESHTEL_BUILD_DIR:-$repo/build}
proxy_bin=$build_dir/proxy/meshtel-proxy
collector_bin=$build_dir/collector/meshtel-collector

if ((quick)); then
  seconds=${BENCH_SECONDS:-2}
  runs=${BENCH_RUNS:-1}
else
  seconds=${BENCH_SECONDS:-10}
  runs=${BENCH_RUNS:-3}
fi
connections=${BENCH_CONNECTIONS:-32}
wrk_threads=${BENCH_WRK_THREADS:-1}
thread_counts=${BENCH_THREADS:-1 2}
rate_seconds=${BENCH_RATE_SECONDS:-$seconds}
hey_qps=${BENCH_HEY_QPS:-200}
hey_workers=${BENCH_HEY_WORKERS:-4}
paced_delay_ms=5
clk_tck=$(getconf CLK_TCK)

die() { echo "proxy_bench: $*" >&2; exit 1; }

for tool in wrk hey nginx haproxy curl pgrep; do
  command -v "$tool" >/dev/null || die "'$tool' is not installed (Debian: apt-get install wrk hey nginx haproxy curl procps)"
done
[[ -x $proxy_bin && -x $collector_bin ]] ||
  die "build meshtel-proxy and meshtel-collector first (looked in $build_dir; set MESHTEL_BUILD_DIR)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/proxy-bench.XXXXXX")
pids=()

stop_pid() {  # stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  trap - EXIT INT TERM
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[$i]}"; done
  if [[ ${BENCH_KEEP_TMP:-0} == 1 ]]; then
    echo "proxy_bench: files kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Helpers

used_ports=" "
free_port() {  # free_port VAR: a port nothing listens on, below the ephemeral range
  local p
  for _ in $(seq 500); do
    p=$((20000 + RANDOM % 12000))
    [[ $used_ports == *" $p "* ]] && continue
    [[ -n $(ss -Htan "sport = :$p") ]] && continue
    used_ports+="$p "
    printf -v "$1" '%s' "$p"
    return 0
  done
  die "no free port found"
}

last_pid=
start() {  # start NAME COMMAND...: runs in the background, output to $tmp/NAME.log
  local name=$1
  shift
  "$@" >"$tmp/$name.log" 2>&1 &
  last_pid=$!
  pids+=("$last_pid")
}

stop() {  # stop PID: stops one process started by start
  local pid=$1 i
  stop_pid "$pid"
  for i in "${!pids[@]}"; do [[ ${pids[$i]} == "$pid" ]] && unset "pids[$i]"; done
  pids=("${pids[@]}")
}

wait_port() {  # wait_port NAME PID PORT
  local name=$1 pid=$2 port=$3
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$tmp/$name.log" >&2; die "$name exited at start"; }
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  tail -n 20 "$tmp/$name.log" >&2
  die "$name does not listen on 127.0.0.1:$port"
}

check_200() {  # check_200 NAME URL [HOST]: one request must answer 200 with the 1 KiB body
  local name=$1 url=$2 host=${3:-} out
  local args=(-s -o /dev/null -w '%{http_code} %{size_download}' --max-time 5)
  [[ -n $host ]] && args+=(-H "Host: $host")
  out=$(curl "${args[@]}" "$url" || true)
  [[ $out == "200 1024" ]] || die "$name: GET $url${host:+ (Host: $host)} gave '$out', expected '200 1024'; logs in $tmp (set BENCH_KEEP_TMP=1 to keep them)"
}

cpu_ticks() {  # cpu_ticks PID...: utime + stime of all given processes, in clock ticks
  local sum=0 pid line f
  for pid; do
    read -r line <"/proc/$pid/stat" || die "process $pid is gone"
    read -ra f <<<"${line##*) }"  # f[0] is field 3 (state): utime is field 14, stime field 15
    sum=$((sum + f[11] + f[12]))
  done
  echo "$sum"
}

mem_kib() {  # mem_kib FIELD PID...: sum of VmRSS or VmHWM, in KiB
  local field=$1 sum=0 pid v
  shift
  for pid; do
    v=$(awk -v k="$field:" '$1 == k { print $2 }' "/proc/$pid/status")
    sum=$((sum + v))
  done
  echo "$sum"
}

to_ms() { awk -v v="$1" 'BEGIN {
  n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
  if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
  printf "%.3f", n }'; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END {
  if (NR == 0) { print "-"; exit }
  if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------------------------------------
# Configs

write_nginx_common() {  # write_nginx_common NAME WORKERS: top of an nginx config, paths in $tmp
  local name=$1 workers=$2
  mkdir -p "$tmp/$name-temp"
  cat <<EOF
worker_processes $workers;
pid $tmp/$name.pid;
error_log $tmp/$name-error.log warn;
$(if ((EUID == 0)); then echo "user root;"; fi)
events { worker_connections 4096; }
http {
  client_body_temp_path $tmp/$name-temp/body;
  proxy_temp_path $tmp/$name-temp/proxy;
  fastcgi_temp_path $tmp/$name-temp/fastcgi;
  uwsgi_temp_path $tmp/$name-temp/uwsgi;
  scgi_temp_path $tmp/$name-temp/scgi;
  keepalive_requests 1000000;
  default_type application/octet-stream;
EOF
}

start_nginx() {  # start_nginx NAME: config in $tmp/NAME.conf
  local name=$1
  start "$name" nginx -e "$tmp/$name-error.log" -c "$tmp/$name.conf" -p "$tmp" -g 'daemon off;'
}

nginx_pids() {  # nginx_pids MASTER: master and workers
  echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"
}

write_proxy_config() {  # write_proxy_config FILE NAME THREADS INBOUND_LISTEN APP OUTBOUND_LISTEN ROUTE_TO ADMIN
  local file=$1 name=$2 threads=$3 in_listen=$4 app=$5 out_listen=$6 route_to=$7 admin=$8
  {
    echo "log_level: warn"
    echo "instance_id: bench-$name-$threads"
    echo "io_threads: $threads"
    echo "drain_timeout: 1s"
    echo "workload: {name: $name, namespace: bench, app: $name, version: v1}"
    if [[ -n $in_listen ]]; then
      echo "inbound: {enabled: true, listen: '127.0.0.1:$in_listen', app: '127.0.0.1:$app'}"
    else
      echo "inbound: {enabled: false}"
    fi
    if [[ -n $out_listen ]]; then
      echo "outbound:"
      echo "  enabled: true"
      echo "  listen: 127.0.0.1:$out_listen"
      echo "  routes:"
      echo "    - host: origin.bench.svc.cluster.local"
      echo "      addresses: ['127.0.0.1:$route_to']"
    else
      echo "outbound: {enabled: false}"
    fi
    echo "reporter: {collector: '127.0.0.1:$ingest_port', flush_interval: 200ms}"
    echo "tracing: {random_sampling_percentage: 1}"
    echo "admin: {enabled: true, listen: '127.0.0.1:$admin'}"
  } >"$file"
}

# ---------------------------------------------------------------------------------------------
# Servers that live for the whole run: the origin nginx and the collector

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p "$tmp/www" "$tmp/out"
head -c 1024 /dev/zero | tr '\0' 'x' >"$tmp/www/1k.html"

free_port origin_port
{
  write_nginx_common origin 1
  cat <<EOF
  access_log off;
  server {
    listen 127.0.0.1:$origin_port;
    root $tmp/www;
  }
}
EOF
} >"$tmp/origin.conf"
start_nginx origin
origin_pid=$last_pid
wait_port origin "$origin_pid" "$origin_port"
check_200 origin "http://127.0.0.1:$origin_port/1k.html"

free_port ingest_port
free_port collector_admin_port
cat >"$tmp/collector.yaml" <<EOF
log_level: warn
shutdown_grace: 1s
ingest: {listen: '127.0.0.1:$ingest_port'}
admin: {listen: '127.0.0.1:$collector_admin_port'}
store: {data_dir: '$tmp/collector-data'}
EOF
start collector "$collector_bin" --config "$tmp/collector.yaml"
collector_pid=$last_pid
wait_port collector "$collector_pid" "$collector_admin_port"
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$collector_admin_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$collector_admin_port/readyz" >/dev/null || die "collector not ready; see $tmp/collector.log"

# ---------------------------------------------------------------------------------------------
# Measurement

cases="a b c d e"
[[ ${BENCH_PAUSED_COLLECTOR:-0} == 1 ]] && cases="a b c d p e"
declare -A case_title=(
  [a]="(a) direct to nginx"
  [b]="(b) nginx reverse proxy"
  [c]="(c) haproxy"
  [d]="(d) meshtel-proxy x1"
  [p]="(d) x1, collector paused"
  [e]="(e) meshtel-proxy x2"
  [n]="(n) nginx reverse proxy x2"
)
declare -A case_url case_host case_pids idle_rss

# run_wrk CASE THREADS RUN: one wrk run, results as key=value lines in $tmp/out/T-CASE-RUN
run_wrk() {
  local c=$1 t=$2 run=$3
  local out=$tmp/out/$t-$c-$run pids_c=${case_pids[$c]}
  local args=(-t"$wrk_threads" -c"$connections" -d"${seconds}s" --latency)
  [[ -n ${case_host[$c]} ]] && args+=(-H "Host: ${case_host[$c]}")
  local coll0 coll1 p cpu_parts0=() cpu_parts1=()
  for p in $pids_c; do cpu_parts0+=("$(cpu_ticks "$p")"); done
  coll0=$(cpu_ticks "$collector_pid")
  [[ $c == p ]] && kill -STOP "$collector_pid"
  wrk "${args[@]}" "${case_url[$c]}" >"$out.wrk" 2>&1 || { cat "$out.wrk" >&2; die "wrk failed for case $c"; }
  if [[ $c == p ]]; then
    kill -CONT "$collector_pid"
    # the next case starts once the proxy's backlog reached the collector (or after 30 s)
    for _ in $(seq 300); do
      [[ $(curl -fs "http://127.0.0.1:$d_admin/stats/prometheus" |
        awk '$1 == "meshtel_proxy_records_buffered_bytes" { print $2 }') == 0 ]] && break
      sleep 0.1
    done
  fi
  coll1=$(cpu_ticks "$collector_pid")
  for p in $pids_c; do cpu_parts1+=("$(cpu_ticks "$p")"); done
  local requests rps p50 p99 non2xx sockerr
  requests=$(awk '/requests in/ { print $1 }' "$out.wrk")
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out.wrk")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out.wrk")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out.wrk")")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out.wrk")
  sockerr=$(awk '/Socket errors:/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$out.wrk")
  [[ -n $requests && -n $rps && $requests -gt 0 ]] || { cat "$out.wrk" >&2; die "cannot parse wrk output for case $c"; }
  local i=0 total=0 parts=()
  for p in $pids_c; do
    local d=$((cpu_parts1[i] - cpu_parts0[i]))
    total=$((total + d))
    parts+=("$d")
    i=$((i + 1))
  done
  per1k() { awk -v t="$1" -v n="$requests" -v hz="$clk_tck" 'BEGIN { printf "%.4f", t / hz / n * 1000 }'; }
  {
    echo "rps=$rps"
    echo "p50=$p50"
    echo "p99=$p99"
    echo "requests=$requests"
    echo "errors=$((${non2xx:-0} + ${sockerr:-0}))"
    echo "cpu=$(per1k "$total")"
    if [[ $c == e ]]; then
      # proxy A is listed first in case_pids[e], then proxy B
      echo "cpu_A=$(per1k "${parts[0]}")"
      echo "cpu_B=$(per1k "${parts[1]}")"
    fi
    echo "collector_cpu=$(per1k $((coll1 - coll0)))"
    echo "rss_after=$(mem_kib VmRSS $pids_c)"
    echo "rss_peak=$(mem_kib VmHWM $pids_c)"
    if [[ $c == e ]]; then
      set -- $pids_c
      echo "rss_after_A=$(mem_kib VmRSS "$1")"
      echo "rss_peak_A=$(mem_kib VmHWM "$1")"
      echo "rss_after_B=$(mem_kib VmRSS "$2")"
      echo "rss_peak_B=$(mem_kib VmHWM "$2")"
    fi
  } >"$out"
  printf '  %-26s run %d: %10s req/s  p50 %7s ms  p99 %7s ms  errors %s\n' \
    "${case_title[$c]}" "$run" "$rps" "$p50" "$p99" "$((${non2xx:-0} + ${sockerr:-0}))" >&2
}

# run_rate KIND TARGET THREADS RUN: fixed moderate rate, KIND hey or paced (wrk with a pause)
run_rate() {
  local kind=$1 target=$2 t=$3 run=$4 url host
  local out=$tmp/out/$t-$kind-$target-$run
  url=${case_url[$target]}; host=${case_host[$target]}
  local p50 p99 rps bad
  if [[ $kind == hey ]]; then
    local args=(-z "${rate_seconds}s" -q "$hey_qps" -c "$hey_workers")
    [[ -n $host ]] && args+=(-host "$host")
    hey "${args[@]}" "$url" >"$out.raw" 2>&1 || { cat "$out.raw" >&2; die "hey failed"; }
    p50=$(awk '$1 == "50%" && $2 == "in" { printf "%.3f", $3 * 1000 }' "$out.raw")
    p99=$(awk '$1 == "99%" && $2 == "in" { printf "%.3f", $3 * 1000 }' "$out.raw")
    rps=$(awk '$1 == "Requests/sec:" { printf "%.0f", $2 }' "$out.raw")
    bad=$(awk '/^Status code distribution:/ { s = 1; next } /^Error distribution:/ { s = 0; e = 1; next }
      s && /\[[0-9]+\]/ { if ($1 != "[200]") n += $2 }
      e && /\[[0-9]+\]/ { n += substr($1, 2) + 0 }
      END { print n + 0 }' "$out.raw")
  else
    echo "function delay() return $paced_delay_ms end" >"$tmp/paced.lua"
    local args=(-t1 -c"$hey_workers" -d"${rate_seconds}s" --latency -s "$tmp/paced.lua")
    [[ -n $host ]] && args+=(-H "Host: $host")
    wrk "${args[@]}" "$url" >"$out.raw" 2>&1 || { cat "$out.raw" >&2; die "wrk (paced) failed"; }
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out.raw")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out.raw")")
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out.raw")
    bad=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$out.raw")
  fi
  [[ -n $p50 && -n $p99 ]] || { cat "$out.raw" >&2; die "cannot parse $kind output"; }
  printf 'p50=%s\np99=%s\nrps=%s\nerrors=%s\n' "$p50" "$p99" "$rps" "$bad" >"$out"
  printf '  %-26s run %d: %6s req/s  p50 %7s ms  p99 %7s ms  errors %s\n' \
    "$kind ${case_title[$target]}" "$run" "$rps" "$p50" "$p99" "$bad" >&2
}

# med FILE_PREFIX KEY: median of KEY over the runs
med() {
  local prefix=$1 key=$2 r vals=""
  for ((r = 1; r <= runs; r++)); do
    vals+=" $(awk -F= -v k="$key" '$1 == k { print $2 }' "$prefix-$r")"
  done
  echo "$vals" | median
}

mib() { [[ $1 == - ]] && { echo -; return; }; awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

for t in $thread_counts; do
  echo "== $t worker thread(s) per proxy: starting the proxies" >&2
  free_port nginx_port
  {
    write_nginx_common nginx-rp "$t"
    cat <<EOF
  access_log $tmp/nginx-rp-access-$t.log;
  upstream origin {
    server 127.0.0.1:$origin_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  } >"$tmp/nginx-rp.conf"
  start_nginx nginx-rp
  nginx_pid=$last_pid
  wait_port nginx-rp "$nginx_pid" "$nginx_port"

  # (n), fixed rate only: a second nginx reverse proxy in front of (b)'s
  free_port nginx2_port
  {
    write_nginx_common nginx-rp2 "$t"
    cat <<EOF
  access_log $tmp/nginx-rp2-access-$t.log;
  upstream first {
    server 127.0.0.1:$nginx_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx2_port;
    location / {
      proxy_pass http://first;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  } >"$tmp/nginx-rp2.conf"
  start_nginx nginx-rp2
  nginx2_pid=$last_pid
  wait_port nginx-rp2 "$nginx2_pid" "$nginx2_port"

  free_port haproxy_port
  cat >"$tmp/haproxy.cfg" <<EOF
global
  nbthread $t
  maxconn 4096
  log stdout format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 127.0.0.1:$haproxy_port
  default_backend origin
backend origin
  server origin 127.0.0.1:$origin_port
EOF
  # haproxy's log lines go to stdout, which start sends to $tmp/haproxy-$t.log
  start "haproxy-$t" haproxy -db -f "$tmp/haproxy.cfg"
  haproxy_pid=$last_pid
  wait_port "haproxy-$t" "$haproxy_pid" "$haproxy_port"

  free_port d_in; free_port d_admin
  write_proxy_config "$tmp/proxy-d.yaml" single "$t" "$d_in" "$origin_port" "" "" "$d_admin"
  start "proxy-d-$t" "$proxy_bin" --config "$tmp/proxy-d.yaml"
  proxy_d_pid=$last_pid
  wait_port "proxy-d-$t" "$proxy_d_pid" "$d_in"

  free_port b_in; free_port b_admin
  write_proxy_config "$tmp/proxy-b.yaml" origin "$t" "$b_in" "$origin_port" "" "" "$b_admin"
  start "proxy-b-$t" "$proxy_bin" --config "$tmp/proxy-b.yaml"
  proxy_b_pid=$last_pid
  wait_port "proxy-b-$t" "$proxy_b_pid" "$b_in"

  free_port a_out; free_port a_admin
  write_proxy_config "$tmp/proxy-a.yaml" client "$t" "" "" "$a_out" "$b_in" "$a_admin"
  start "proxy-a-$t" "$proxy_bin" --config "$tmp/proxy-a.yaml"
  proxy_a_pid=$last_pid
  wait_port "proxy-a-$t" "$proxy_a_pid" "$a_out"

  case_url=(
    [a]="http://127.0.0.1:$origin_port/1k.html"
    [b]="http://127.0.0.1:$nginx_port/1k.html"
    [c]="http://127.0.0.1:$haproxy_port/1k.html"
    [d]="http://127.0.0.1:$d_in/1k.html"
    [p]="http://127.0.0.1:$d_in/1k.html"
    [e]="http://127.0.0.1:$a_out/1k.html"
    [n]="http://127.0.0.1:$nginx2_port/1k.html"
  )
  case_host=([a]="" [b]="" [c]="" [d]="" [p]="" [e]="origin.bench" [n]="")
  case_pids=(
    [a]="$(nginx_pids "$origin_pid")"
    [b]="$(nginx_pids "$nginx_pid")"
    [c]="$haproxy_pid"
    [d]="$proxy_d_pid"
    [p]="$proxy_d_pid"
    [e]="$proxy_a_pid $proxy_b_pid"
  )

  for c in $cases n; do check_200 "${case_title[$c]}" "${case_url[$c]}" "${case_host[$c]}"; done
  sleep 0.5
  for c in $cases; do idle_rss[$t-$c]=$(mem_kib VmRSS ${case_pids[$c]}); done
  idle_rss[$t-eA]=$(mem_kib VmRSS "$proxy_a_pid")
  idle_rss[$t-eB]=$(mem_kib VmRSS "$proxy_b_pid")

  for ((run = 1; run <= runs; run++)); do
    for c in $cases; do
      # short warm-up (upstream connection pools, page cache), then the measured run
      wrk -t1 -c"$connections" -d1s ${case_host[$c]:+-H "Host: ${case_host[$c]}"} "${case_url[$c]}" >/dev/null 2>&1
      run_wrk "$c" "$t" "$run"
    done
    for target in a e n; do
      run_rate hey "$target" "$t" "$run"
      run_rate paced "$target" "$t" "$run"
    done
  done

  # every proxy must still be alive, and the records must have reached the collector
  for p in $proxy_d_pid $proxy_a_pid $proxy_b_pid $haproxy_pid $nginx_pid $nginx2_pid; do
    kill -0 "$p" 2>/dev/null || die "process $p died during the run; logs in $tmp"
  done
  sleep 0.5
  for name in d a b; do
    port_var=${name}_admin
    curl -fs "http://127.0.0.1:${!port_var}/stats/prometheus" >"$tmp/out/$t-proxy-$name.stats" ||
      die "proxy $name admin /stats/prometheus failed"
  done
  stop "$proxy_a_pid"
  stop "$proxy_b_pid"
  stop "$proxy_d_pid"
  stop "$haproxy_pid"
  stop "$nginx2_pid"
  stop "$nginx_pid"
done

curl -fs "http://127.0.0.1:$collector_admin_port/metrics" >"$tmp/out/collector.metrics" || die "collector /metrics failed"

# ---------------------------------------------------------------------------------------------
# Report

stat_value() {  # stat_value METRIC FILE: sum of the metric's samples
  awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf "%.0f", s }' "$2"
}

rows=()  # tab-separated: threads case req/s p50 p99 errors cpu coll_cpu rss_idle rss_after rss_peak
for t in $thread_counts; do
  for c in $cases; do
    pre=$tmp/out/$t-$c
    coll=-
    [[ $c == d || $c == e ]] && coll=$(med "$pre" collector_cpu)
    rows+=("$t	${case_title[$c]}	$(med "$pre" rps)	$(med "$pre" p50)	$(med "$pre" p99)	$(med "$pre" errors)	$(med "$pre" cpu)	$coll	$(mib "${idle_rss[$t-$c]}")	$(mib "$(med "$pre" rss_after)")	$(mib "$(med "$pre" rss_peak)")")
    if [[ $c == e ]]; then
      for x in A B; do
        rows+=("$t	    proxy $x	-	-	-	-	$(med "$pre" "cpu_$x")	-	$(mib "${idle_rss[$t-e$x]}")	$(mib "$(med "$pre" "rss_after_$x")")	$(mib "$(med "$pre" "rss_peak_$x")")")
      done
    fi
  done
done

added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", b - a }'; }  # added BASE VALUE
rate_rows=()  # threads tool rps a/e/n, a p50 p99, e p50 p99 added, n p50 p99 added, errors
for t in $thread_counts; do
  for kind in hey paced; do
    a50=$(med "$tmp/out/$t-$kind-a" p50); a99=$(med "$tmp/out/$t-$kind-a" p99)
    e50=$(med "$tmp/out/$t-$kind-e" p50); e99=$(med "$tmp/out/$t-$kind-e" p99)
    arps=$(med "$tmp/out/$t-$kind-a" rps); erps=$(med "$tmp/out/$t-$kind-e" rps)
    n50=$(med "$tmp/out/$t-$kind-n" p50); n99=$(med "$tmp/out/$t-$kind-n" p99)
    nrps=$(med "$tmp/out/$t-$kind-n" rps)
    errs=0
    for target in a e n; do errs=$((errs + $(med "$tmp/out/$t-$kind-$target" errors | cut -d. -f1))); done
    label="hey -q $hey_qps -c $hey_workers"
    [[ $kind == paced ]] && label="wrk -c $hey_workers, ${paced_delay_ms} ms pause"
    rate_rows+=("$t	$label	$arps / $erps / $nrps	$a50	$a99	$e50	$e99	$(added "$a50" "$e50")	$(added "$a99" "$e99")	$n50	$n99	$(added "$a50" "$n50")	$(added "$a99" "$n99")	$errs")
  done
done

echo
echo "proxy_bench: $(nproc) CPUs ($(lscpu | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }')), kernel $(uname -r)"
echo "wrk -t$wrk_threads -c$connections -d${seconds}s --latency, keep-alive, 1 KiB static file; $runs run(s) per case, medians; origin nginx 1 worker"
echo "load average (1, 5, 15 min) at start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-7s %-26s %10s %8s %8s %6s %10s %10s %8s %8s %8s\n' threads case "req/s" "p50 ms" "p99 ms" errors "CPU s/1k" "coll s/1k" "RSS idle" "after" "peak"
for row in "${rows[@]}"; do
  IFS=$'\t' read -r t c r p5 p9 er cpu coll ri ra rp <<<"$row"
  printf '%-7s %-26s %10s %8s %8s %6s %10s %10s %8s %8s %8s\n' "$t" "$c" "$r" "$p5" "$p9" "$er" "$cpu" "$coll" "$ri" "$ra" "$rp"
done
echo "(CPU s/1k: proxy CPU seconds per 1000 requests, nginx master + workers, (e) both proxies;"
echo " coll s/1k: the collector's; RSS in MiB: idle after start, after the load, peak VmHWM)"
echo
for t in $thread_counts; do
  rb=$(med "$tmp/out/$t-b" rps); rd=$(med "$tmp/out/$t-d" rps)
  echo "$t thread(s): (d) / (b) requests/s = $(awk -v d="$rd" -v b="$rb" 'BEGIN { printf "%.2f", d / b }')"
  if [[ " $cases " == *" p "* ]]; then
    rp=$(med "$tmp/out/$t-p" rps)
    echo "$t thread(s): (d, collector paused) / (b) requests/s = $(awk -v d="$rp" -v b="$rb" 'BEGIN { printf "%.2f", d / b }')"
  fi
done
echo
rate_format='%-7s %-28s %20s %8s %8s %8s %8s %9s %9s %8s %8s %9s %9s %6s\n'
printf "$rate_format" threads "fixed rate" "req/s a / e / n" "a p50" "a p99" "e p50" "e p99" "e +p50" "e +p99" "n p50" "n p99" "n +p50" "n +p99" errors
for row in "${rate_rows[@]}"; do
  IFS=$'\t' read -r t l r a5 a9 e5 e9 d5 d9 n5 n9 m5 m9 er <<<"$row"
  printf "$rate_format" "$t" "$l" "$r" "$a5" "$a9" "$e5" "$e9" "$d5" "$d9" "$n5" "$n9" "$m5" "$m9" "$er"
done
echo "(milliseconds; a = direct to nginx, e = through two meshtel-proxies, n = through two nginx"
echo " reverse proxies; +p50, +p99: added over a)"
echo
for t in $thread_counts; do
  line="$t thread(s) records:"
  for name in d a b; do
    sf=$tmp/out/$t-proxy-$name.stats
    line+=" proxy $name submitted $(stat_value meshtel_proxy_records_submitted_total "$sf") acked $(stat_value meshtel_proxy_records_acked_total "$sf") dropped $(stat_value meshtel_proxy_records_dropped_total "$sf")"
    line+=" upstream conns opened $(stat_value meshtel_proxy_upstream_connections_opened_total "$sf");"
  done
  echo "$line"
done
echo "collector: istio_requests_total sum $(stat_value istio_requests_total "$tmp/out/collector.metrics")"

if ((markdown)); then
  echo
  echo "| Threads | Case | Requests/s | p50 ms | p99 ms | Errors | Proxy CPU s / 1000 req | Collector CPU s / 1000 req | RSS MiB idle / after / peak |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for row in "${rows[@]}"; do
    IFS=$'\t' read -r t c r p5 p9 er cpu coll ri ra rp <<<"$row"
    c=${c#"    "}
    echo "| $t | $c | $r | $p5 | $p9 | $er | $cpu | $coll | $ri / $ra / $rp |"
  done
  echo
  echo "| Threads | (d) / (b) requests/s | (d, collector paused) / (b) |"
  echo "|---|---|---|"
  for t in $thread_counts; do
    rb=$(med "$tmp/out/$t-b" rps); rd=$(med "$tmp/out/$t-d" rps)
    paused=-
    if [[ " $cases " == *" p "* ]]; then
      paused=$(awk -v d="$(med "$tmp/out/$t-p" rps)" -v b="$rb" 'BEGIN { printf "%.2f", d / b }')
    fi
    echo "| $t | $(awk -v d="$rd" -v b="$rb" 'BEGIN { printf "%.2f", d / b }') | $paused |"
  done
  echo
  echo "| Threads | Fixed rate | Requests/s (a / e / n) | (a) p50 ms | (a) p99 ms | (e) p50 ms | (e) p99 ms | (e) added p50 ms | (e) added p99 ms | (n) p50 ms | (n) p99 ms | (n) added p50 ms | (n) added p99 ms | Errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for row in "${rate_rows[@]}"; do
    IFS=$'\t' read -r t l r a5 a9 e5 e9 d5 d9 n5 n9 m5 m9 er <<<"$row"
    echo "| $t | $l | $r | $a5 | $a9 | $e5 | $e9 | $d5 | $d9 | $n5 | $n9 | $m5 | $m9 | $er |"
  done
fi
