#!/usr/bin/env bash
# Fails when a source file with logic has no test at its mirrored path:
#   collector/metrics/request_metrics.cc  →  tests/collector/metrics/request_metrics_test.cc
# A file tested elsewhere says so on a line of its own: "// Tested by: tests/<path>", and that
# file must exist. Programs' main.cc files are exempt (the end-to-end tests run them).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=0
while IFS= read -r source; do
  [ "$(basename "$source")" = main.cc ] && continue
  mirror="tests/${source%.cc}_test.cc"
  [ -f "$mirror" ] && continue
  declared=$(sed -n 's|^// Tested by: \(tests/[^ ]*\).*|\1|p' "$source" | head -n 1)
  if [ -n "$declared" ] && [ -f "$declared" ]; then continue; fi
  echo "check-test-mirror: $source has no test at $mirror (nor a '// Tested by:' line)" >&2
  missing=1
done < <(git ls-files 'collector/*.cc' 'proxy/*.cc' 'exporters/*.cc')
[ "$missing" = 0 ] && echo "check-test-mirror: every source file has its test"
exit "$missing"
