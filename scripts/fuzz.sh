#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang and runs each for a bounded time.
#   FUZZ_SECONDS   seconds per target (default 30)
# A crash fails the script and leaves the input as build-fuzz/crash-*; the corpus grows in
# build-fuzz/corpus/<target>/ (seeded from tests/fuzz/seeds/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
build_dir="${MESHTEL_FUZZ_BUILD_DIR:-build-fuzz}"
CC=clang CXX=clang++ cmake -S tests/fuzz -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir"
for target in trace_context http_request msgpack otlp_decoder als_decoder filter_expression record_view; do
  corpus="$build_dir/corpus/$target"
  mkdir -p "$corpus"
  echo "fuzz: ${target}_fuzz for ${seconds}s"
  "$build_dir/${target}_fuzz" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$build_dir/" "$corpus" "tests/fuzz/seeds/$target" 2>&1 | tail -n 4
  [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz: ${target}_fuzz found a failure" >&2; exit 1; }
done
echo "fuzz: no failures"
