#!/usr/bin/env bash
# The contended rows of lockprof's benchmark suite (cache/* and empty/*:
# every lock at 2, 4, 8, ... threads up to the machine's cores) and the same
# cache workload in Go, on a machine that has none of lockprof's libraries:
# everything runs from .device-bundle/ (tools/bench/device/pack.sh). Needs
# bash and coreutils only - no compiler, Go or python.
#
#   OUT=/some/dir bash tools/bench/device/run_scaling.sh
#
# Writes into $OUT (default build-bench/device-results) what run_benchmarks.sh
# writes for these rows - machine.txt, bench.round-*.json, bench.txt, go.txt - so
# that tools/bench/report.py reads the directory afterwards, elsewhere.
# Environment: REPS (default 3), MIN_TIME (seconds per repetition, default
# 0.3), GO_DURATION (default 1s): sized so that 16 cores finish in about 5
# minutes (README.md beside this file has the arithmetic).
#
# Exits non-zero if a phase failed, after running the others: whatever was
# written stays in $OUT.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUNDLE=$ROOT/.device-bundle
OUT=${OUT:-$ROOT/build-bench/device-results}
# Six rounds: the fewest that report.py gives a verdict on (the whole range
# of five covers the median with 94% only); short repetitions, to fit.
REPS=${REPS:-6}
MIN_TIME=${MIN_TIME:-0.15}
GO_DURATION=${GO_DURATION:-1s}
# Each phase's ceiling: the run is meant to take at most about 8 minutes,
# and a phase that runs away must leave time for the next.
BENCH_TIMEOUT=${BENCH_TIMEOUT:-360}
GO_TIMEOUT=${GO_TIMEOUT:-75}

SECONDS=0
status=0
phase() { echo "[run_scaling ${SECONDS}s] $*"; }
# A failed phase is reported and remembered; the script goes on.
failed() {
  echo "[run_scaling ${SECONDS}s] FAILED: $*" >&2
  status=1
}
# `timeout` where coreutils has it; a bare run otherwise.
limit() {
  local secs=$1
  shift
  if command -v timeout >/dev/null; then timeout -k 10 "$secs" "$@"; else "$@"; fi
}
# lockprof_bench through the bundled loader. --library-path replaces
# LD_LIBRARY_PATH, and the system directories would be searched only for
# what the bundle lacks (nothing: pack.sh copies all that ldd lists), so the
# device's own glibc is never mixed with ours. OPENSSL_CONF=/dev/null: the
# bundled libssl (loaded for httplib) would otherwise read the device's
# openssl.cnf, written for another OpenSSL. /proc/self/exe names the loader
# in this process: the contended rows never symbolize, and the symbolizer
# checks build-ids rather than trusting /proc/self/exe. An array, not a
# function, so that `timeout` can run it.
bench=(env -u LD_PRELOAD -u LD_LIBRARY_PATH OPENSSL_CONF=/dev/null
  "$BUNDLE/ld-linux-x86-64.so.2" --library-path "$BUNDLE" --argv0 lockprof_bench
  "$BUNDLE/lockprof_bench")

if [[ -f $BUNDLE/ld-linux-x86-64.so.2 && ! -x $BUNDLE/ld-linux-x86-64.so.2 ]]; then
  chmod u+x "$BUNDLE"/* # a copy that lost its mode bits
fi
for f in ld-linux-x86-64.so.2 lockprof_bench cache_bench_go go-version.txt; do
  if [[ ! -f $BUNDLE/$f ]]; then
    echo "run_scaling.sh: $BUNDLE/$f missing: run tools/bench/device/pack.sh and carry .device-bundle" >&2
    exit 2
  fi
done
mkdir -p "$OUT" || exit 2

# --- Machine: the keys of run_benchmarks.sh's machine.txt, and what else
# --- explains a scaling curve (kernel, clock source) ---------------------
# GNU nproc counts the CPUs we may run on, but reports OMP_NUM_THREADS
# instead where an image sets it.
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
[[ -n $model ]] || model=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1)
{
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "nproc=$cores"
  echo "model=$model"
  echo "kernel=$(uname -r)"
  echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)"
  echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "go=$(cat "$BUNDLE/go-version.txt") (static binary, built at pack time)"
  echo "reps=$REPS min_time=$MIN_TIME"
  echo "bundle=$(tr '\n' ' ' <"$BUNDLE/build-info.txt" 2>/dev/null)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt"

# --- C++: the contended rows ---------------------------------------------
# The thread counts are the benchmark's own (bench::ContendedThreadCounts():
# 2, 4, 8, ... then std::thread::hardware_concurrency(), which glibc takes
# from the online CPUs rather than from our affinity); Go runs at the same.
ROWS='^(cache|empty)/'
rows=$("${bench[@]}" --benchmark_list_tests --benchmark_filter="$ROWS") ||
  failed "lockprof_bench does not start from the bundle"
thread_list=$(grep -o 'threads:[0-9]*' <<<"$rows" | cut -d: -f2 | sort -nu | paste -sd,)
echo "bench_threads=${thread_list:-none}" >>"$OUT/machine.txt"
phase "lockprof_bench: $(grep -c . <<<"$rows") rows (threads ${thread_list:-none}) x $REPS reps x ${MIN_TIME}s"
# In REPS rounds of every row in a random order, as run_benchmarks.sh (which
# says why rounds, not --benchmark_repetitions); the timeout is the phase's.
bench_deadline=$((SECONDS + BENCH_TIMEOUT))
rm -f "$OUT"/bench.json "$OUT"/bench.round-*.json
: >"$OUT/bench.txt"
for ((round = 1; round <= REPS; round++)); do
  left=$((bench_deadline - SECONDS))
  if ((left <= 0)); then
    failed "lockprof_bench: no time left for round $round of $REPS (over ${BENCH_TIMEOUT}s)"
    break
  fi
  limit "$left" "${bench[@]}" --benchmark_filter="$ROWS" --benchmark_min_time="$MIN_TIME" \
    --benchmark_enable_random_interleaving=true \
    --benchmark_out="$OUT/bench.round-$round.json" --benchmark_out_format=json \
    >>"$OUT/bench.txt" 2>&1 || {
    failed "lockprof_bench round $round exited $? (124: over ${BENCH_TIMEOUT}s); see bench.txt"
    rm -f "$OUT/bench.round-$round.json" # cut short: not a round
  }
done
phase "lockprof_bench done"

# --- Go: the cache workload with sync.Mutex ------------------------------
# GOMAXPROCS unset: Go uses every CPU, as the C++ rows do.
[[ -n $thread_list ]] || thread_list=2
phase "Go cache workload: threads $thread_list x 3 settings x $REPS reps x $GO_DURATION"
limit "$GO_TIMEOUT" env -u GOMAXPROCS -u GODEBUG "$BUNDLE/cache_bench_go" \
  -threads "$thread_list" -duration "$GO_DURATION" -reps "$REPS" >"$OUT/go.txt" 2>&1 ||
  failed "cache_bench_go exited $? (124: over ${GO_TIMEOUT}s); see go.txt"
phase "Go done"

echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
echo "wall_s=$SECONDS" >>"$OUT/machine.txt"
phase "finished, status $status; results in $OUT"
exit "$status"
