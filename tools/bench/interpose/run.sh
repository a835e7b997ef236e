#!/usr/bin/env bash
# Measures what liblockprof_preload.so adds: interpose_bench plainly and under
# LD_PRELOAD (profiling at its defaults), interleaved, REPS times each; then
# the cost of one stack capture per unwinding mode. Prints each run's rows
# (name, real ns, CPU ns per iteration). Usage: tools/bench/interpose/run.sh [build dir] [reps]
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
reps=${2:-5}
ninja -C "$build" interpose_bench unwind_bench lockprof_preload >/dev/null
bench="$build/tools/bench/interpose/interpose_bench"
preload=$(ls "$build"/primitives/interpose/liblockprof_preload.so)
args=(--benchmark_min_time=0.5 --benchmark_format=csv)
for i in $(seq "$reps"); do
  echo "# rep $i: plain"
  "$bench" "${args[@]}" 2>/dev/null | grep '^"' | cut -d, -f1,3,4
  echo "# rep $i: LD_PRELOAD"
  LD_PRELOAD=$preload "$bench" "${args[@]}" 2>/dev/null | grep '^"' | cut -d, -f1,3,4
done
"$build/tools/bench/interpose/unwind_bench" --benchmark_min_time=0.5
