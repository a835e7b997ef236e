#!/usr/bin/env bash
# Builds lockprof and runs the demo service (the guide's cache workload) with
# its admin endpoint on 127.0.0.1:6060. Extra arguments go to the demo, e.g.
#   tools/demo.sh --fixed --duration=60
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build lockprof-demo >/dev/null
exec build/tools/demo/lockprof-demo "$@"
