#!/usr/bin/env bash
# A/B of two builds of lockprof_bench (say, before and after a change to the
# lock protocol), interleaved: each repetition runs both binaries, in
# alternating order, each once over every row, so that drift in the
# machine's load hits both sides alike. Then prints ab_report.py's tables
# (medians, spread, B/A, and the targets judged on B).
#
#   tools/bench/ab.sh A_BENCH B_BENCH OUT_DIR
#
# Environment: REPS (default 5), MIN_TIME (seconds per row, default 0.2),
# FILTER (the rows; default the uncontended, empty and cache rows),
# LOCKPROF_BENCH_THREADS (thread counts of the contended rows, e.g.
# "2,4,8,16"; see bench_util.h).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
A=$1 B=$2 OUT=$3
REPS=${REPS:-5}
MIN_TIME=${MIN_TIME:-0.2}
FILTER=${FILTER:-'^(uncontended_mt|uncontended_shared_mt|empty|cache|sizeof)/'}
mkdir -p "$OUT"
{
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "nproc=$(nproc)"
  echo "model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "reps=$REPS min_time=$MIN_TIME threads=${LOCKPROF_BENCH_THREADS:-default}"
  echo "A=$A"
  echo "B=$B"
} >"$OUT/machine.txt"
for ((rep = 1; rep <= REPS; rep++)); do
  order=(A B)
  ((rep % 2 == 0)) && order=(B A)
  for side in "${order[@]}"; do
    bin=$A
    [[ $side == B ]] && bin=$B
    echo "rep $rep/$REPS: $side"
    "$bin" --benchmark_filter="$FILTER" --benchmark_min_time="$MIN_TIME" \
      --benchmark_enable_random_interleaving=true \
      --benchmark_out="$OUT/$side.$rep.json" --benchmark_out_format=json >/dev/null 2>&1
  done
done
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
python3 "$ROOT/tools/bench/ab_report.py" "$OUT" | tee "$OUT/report.md"
