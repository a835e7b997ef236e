#!/usr/bin/env bash
# Builds lockprof and runs the demo service (the guide's cache workload) with
# its admin endpoint on 127.0.0.1:6060. Extra arguments go to the demo, e.g.
#   tools/demo.sh --fixed --duration=60
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh demo
# Quiet when it builds; the whole log, and a failure, when it does not.
log=$(mktemp /tmp/lockprof-demo-build.XXXXXX)
[ -x build/tools/demo/lockprof-demo ] || echo "lockprof: building the demo (minutes the first time)" >&2
if ! { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo && ninja -C build lockprof-demo; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "lockprof: the demo's build failed (log above, and in $log)" >&2
  exit 1
fi
rm -f "$log"
exec build/tools/demo/lockprof-demo "$@"
