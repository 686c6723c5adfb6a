#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing from Debian 12 packages, builds
# everything, and runs every test with ctest. Exit code 0 only when every test passed.
#   MESHTEL_BUILD_DIR   build directory (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh test
scripts/check-test-mirror.sh
scripts/check-format.sh

build_dir="${MESHTEL_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build_dir" -j "$(nproc)"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" scripts/fuzz.sh
cd "$build_dir"
ctest --output-on-failure -j 2 --timeout 900
