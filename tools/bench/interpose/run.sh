#!/usr/bin/env bash
# Measures what liblockprof_preload.so adds: interpose_bench plainly and under
# LD_PRELOAD (profiling at its defaults, and with each setting of
# LOCKPROF_INTERPOSE_VARIANTS: lock-order checking, held-lock details, the
# stall watchdog), interleaved, REPS times each; then the cost of one stack
# capture per unwinding mode. Prints each run's rows (name, real ns, CPU ns
# per iteration) under a "# rep N: <setting>" line.
# Usage: tools/bench/interpose/run.sh [build dir] [reps]
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
reps=${2:-5}
# Settings run under LD_PRELOAD besides the defaults, separated by ';'.
variants=${LOCKPROF_INTERPOSE_VARIANTS:-LOCKPROF_LOCK_ORDER=report;LOCKPROF_LOCK_ORDER=report LOCKPROF_TRACK_HELD=1;LOCKPROF_STALL_REPORT_MS=1000}
ninja -C "$build" interpose_bench unwind_bench lockprof_preload >/dev/null
bench="$build/tools/bench/interpose/interpose_bench"
preload=$(ls "$build"/primitives/interpose/liblockprof_preload.so)
args=(--benchmark_min_time=0.5 --benchmark_format=csv)
# The rows of one run of the benchmark, under the environment `env "$@"`.
rows() { env "$@" "$bench" "${args[@]}" 2>/dev/null | grep '^"' | cut -d, -f1,3,4; }
IFS=';' read -r -a settings <<<"$variants"
for i in $(seq "$reps"); do
  echo "# rep $i: plain"
  rows
  echo "# rep $i: LD_PRELOAD"
  rows LD_PRELOAD="$preload"
  for s in "${settings[@]}"; do
    echo "# rep $i: LD_PRELOAD $s"
    # shellcheck disable=SC2086 # each word of the setting is one variable
    rows LD_PRELOAD="$preload" $s
  done
done
"$build/tools/bench/interpose/unwind_bench" --benchmark_min_time=0.5
