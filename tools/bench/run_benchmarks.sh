#!/usr/bin/env bash
# lockprof's benchmark suite, in one command: builds optimised binaries in
# build-bench/, runs every benchmark (C++ against std::mutex,
# std::shared_mutex and absl::Mutex; the same cache workload in Go; profile
# scrapes; memory under a million distinct stacks) and prints the ratio
# table that BENCHMARKS.md reports.
#
#   tools/bench/run_benchmarks.sh            # full run (~6 minutes on 2 cores)
#   tools/bench/run_benchmarks.sh --quick    # short runs, for trying it out
#
# Environment: REPS (rounds: repetitions of each row, default 5), MIN_TIME
# (seconds per benchmark repetition, default 0.5), BUILD_DIR (default build-bench),
# OUT_DIR (default $BUILD_DIR/results). Installs its Debian packages if
# missing (tools/deps.sh bench).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/results}
REPS=${REPS:-5}
MIN_TIME=${MIN_TIME:-0.5}
GO_DURATION=1s
SCRAPE_SECONDS=5
if [[ "${1:-}" == "--quick" ]]; then
  REPS=1 MIN_TIME=0.05 GO_DURATION=200ms SCRAPE_SECONDS=1
fi

# --- Dependencies (quiet when already installed) ---------------------------
"$ROOT/tools/deps.sh" bench

# --- Build (tools/bench/build_bench.sh) --------------------------------------
source "$ROOT/tools/bench/build_bench.sh"
build_bench "$BUILD_DIR" "$(nproc)" lockprof_bench scrape_pause stack_memory
BENCH="$BUILD_DIR/tools/bench"
mkdir -p "$OUT_DIR"

# --- Machine ---------------------------------------------------------------
{
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "nproc=$(nproc)"
  echo "model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  # The clock lockprof times waits with depends on it (agent/record/clock.h).
  echo "kernel=$(uname -r)"
  echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "go=$(go version | cut -d' ' -f3)"
  echo "reps=$REPS min_time=$MIN_TIME"
} >"$OUT_DIR/machine.txt"
cat "$OUT_DIR/machine.txt"

# Thread counts: 2, 4, 8, ... up to nproc, and nproc (as the C++ suite).
threads=()
for ((n = 2; n < $(nproc); n *= 2)); do threads+=("$n"); done
threads+=("$(( $(nproc) < 2 ? 2 : $(nproc) ))")
thread_list=$(IFS=,; echo "${threads[*]}")

# --- C++ benchmarks --------------------------------------------------------
# The rows of the ratio tables, in REPS rounds: each round runs every row
# once, in a random order (so that no row always follows the same one), and
# the targets pair the rows of a round, which ran minutes apart at most, not
# a run's length (report.py). Not --benchmark_repetitions: Google Benchmark
# shuffles all the repetitions of all the rows together, so its repetition i
# of two rows may have run at opposite ends of the run. Then every other
# benchmark in the binary once, for the record.
RATIO_ROWS='^(uncontended|uncontended_nested|uncontended_shared|empty|cache|think|event|profile)/'
echo "Running lockprof_bench ($REPS rounds, min_time=$MIN_TIME)..."
rm -f "$OUT_DIR"/bench.json "$OUT_DIR"/bench.round-*.json
: >"$OUT_DIR/bench.txt"
for ((round = 1; round <= REPS; round++)); do
  "$BENCH/lockprof_bench" --benchmark_filter="$RATIO_ROWS" --benchmark_min_time="$MIN_TIME" \
    --benchmark_enable_random_interleaving=true \
    --benchmark_out="$OUT_DIR/bench.round-$round.json" --benchmark_out_format=json \
    >>"$OUT_DIR/bench.txt" 2>&1
done
"$BENCH/lockprof_bench" --benchmark_filter="-$RATIO_ROWS" --benchmark_min_time="$MIN_TIME" \
  --benchmark_out="$OUT_DIR/bench_other.json" --benchmark_out_format=json \
  >"$OUT_DIR/bench_other.txt" 2>&1

# --- Go: the cache workload with sync.Mutex --------------------------------
echo "Running the Go cache workload (threads $thread_list)..."
(cd "$ROOT/tools/bench/go" &&
  env "${go_offline_env[@]}" go run cache_bench.go -threads "$thread_list" \
    -duration "$GO_DURATION" -reps "$REPS") \
  >"$OUT_DIR/go.txt"

# --- Scrapes and memory ----------------------------------------------------
echo "Running scrape_pause and stack_memory..."
"$BENCH/scrape_pause" --seconds "$SCRAPE_SECONDS" >"$OUT_DIR/scrape.txt"
# At the default cap; at a small one (every profile overflows); at a large
# one (memory follows the cap, not the number of stacks). report.py flags a
# run that lost earlier samples.
: >"$OUT_DIR/memory.txt"
for cap in default 256 65536; do
  if [[ $cap == default ]]; then
    env -u LOCKPROF_MAX_STACKS "$BENCH/stack_memory" >>"$OUT_DIR/memory.txt" || true
  else
    LOCKPROF_MAX_STACKS=$cap "$BENCH/stack_memory" >>"$OUT_DIR/memory.txt" || true
  fi
done
echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT_DIR/machine.txt"

python3 "$ROOT/tools/bench/report.py" "$OUT_DIR" | tee "$OUT_DIR/report.md"
