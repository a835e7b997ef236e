#!/usr/bin/env bash
# Soak test: the demo under contention for minutes while clients scrape every
# endpoint it serves and its uploader sends every profile, every 5 s, to the
# strict Pyroscope stand-in (tools/pyroscope_receiver), checking that the
# process stays healthy:
#   * every request answers 200 within its limit (no errors, no hang),
#   * every 20 s a mutex profile parses with `go tool pprof` and /metrics
#     passes `promtool check metrics`,
#   * the receiver accepts every upload, at least one per interval,
#   * RSS, threads and open files stay flat after the warm-up,
#   * the demo exits cleanly (status 0) when stopped.
# Endpoints are probed once; one that does not answer 200 is listed as
# skipped.
#
#   tools/soak.sh [--duration=SECONDS] [--warmup=SECONDS] [--clients=N]
#                 [--limit=SECONDS] [--build=DIR]
# Defaults: 300 s measured after a 60 s warm-up, 4 clients, 10 s per request,
# build/. Prints a summary (also in $LOCKPROF_SOAK_DIR/summary.txt) and exits
# non-zero if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=300 warmup=60 clients=4 limit=10 build=build
for arg in "$@"; do
  case $arg in
    --duration=*) duration=${arg#*=} ;;
    --warmup=*) warmup=${arg#*=} ;;
    --clients=*) clients=${arg#*=} ;;
    --limit=*) limit=${arg#*=} ;;
    --build=*) build=${arg#*=} ;;
    *) echo "usage: $0 [--duration=S] [--warmup=S] [--clients=N] [--limit=S] [--build=DIR]" >&2; exit 2 ;;
  esac
done
# RSS may grow after the warm-up by at most this much (KiB), or this percent.
rss_slack_kb=${LOCKPROF_SOAK_RSS_SLACK_KB:-4096}
rss_slack_pct=${LOCKPROF_SOAK_RSS_SLACK_PCT:-5}

tools/deps.sh bench  # go, curl, promtool
# Always: a no-op when the demo is up to date, and a soak of a stale binary otherwise.
[ -f "$build/build.ninja" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" lockprof-demo >/dev/null
dir=${LOCKPROF_SOAK_DIR:-$(mktemp -d /tmp/lockprof-soak.XXXXXX)}
mkdir -p "$dir"
export GOCACHE=${GOCACHE:-/tmp/lockprof-gocache} HOME=${HOME:-/tmp} GOFLAGS=-mod=mod GOPROXY=off
export PPROF_TMPDIR=/tmp
interval=5

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "${demo:-}" "${receiver:-}" 2>/dev/null || true
}
trap cleanup EXIT
go build -o "$dir/pyroscope-receiver" tools/pyroscope_receiver/*.go
mkdir -p "$dir/uploads"
"$dir/pyroscope-receiver" -dir="$dir/uploads" >"$dir/receiver.out" 2>&1 &
receiver=$!
for _ in $(seq 100); do
  receiver_port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/receiver.out")
  [ -n "$receiver_port" ] && break
  sleep 0.1
done
[ -n "${receiver_port:-}" ] || { echo "soak: the receiver did not start" >&2; exit 1; }

LOCKPROF_PYROSCOPE_URL=http://127.0.0.1:$receiver_port LOCKPROF_PYROSCOPE_APP=lockprof-soak \
  LOCKPROF_PYROSCOPE_INTERVAL=$interval \
  "$build/tools/demo/lockprof-demo" --addr=127.0.0.1:0 --duration=$((warmup + duration + 60)) \
  --readers=16 --writers=4 --slow-ms=2 >"$dir/demo.out" 2>"$dir/demo.err" &
demo=$!
for _ in $(seq 100); do
  port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/debug/pprof/.*|\1|p' "$dir/demo.out" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "${port:-}" ] || { echo "soak: the demo did not start" >&2; cat "$dir/demo.err" >&2; exit 1; }
base=http://127.0.0.1:$port

endpoints=(/debug/pprof/ /debug/pprof/mutex /debug/pprof/block /debug/pprof/hold
  /debug/pprof/cas "/debug/pprof/mutex?debug=1" "/debug/pprof/hold?debug=1")
skipped=()
for ep in /metrics /debug/pprof/delta_mutex /debug/pprof/delta_block "/debug/pprof/mutex?seconds=2"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$base$ep" || true)
  if [ "$code" = 200 ]; then endpoints+=("$ep"); else skipped+=("$ep ($code)"); fi
done

# Each client cycles through the endpoints, from its own starting point.
# Log lines: <unix time> <http code> <seconds> <endpoint>.
scrape() {
  local i=$1 n=${#endpoints[@]} k=$1 ep max
  while :; do
    ep=${endpoints[$((k % n))]}
    max=$limit
    [[ $ep == *seconds=* ]] && max=$((limit + ${ep##*seconds=}))
    out=$(curl -s -o /dev/null --max-time "$max" -w '%{http_code} %{time_total}' "$base$ep" || true)
    echo "$(date +%s) ${out:-000 $max} $ep" >>"$dir/client$i.log"
    k=$((k + 1))
  done
}
for i in $(seq "$clients"); do
  scrape "$i" &
  pids+=($!)
done
# Process health every 2 s: <unix time> <VmRSS KiB> <threads> <open fds>.
monitor() {
  while :; do
    echo "$(date +%s) $(awk '/^VmRSS/{print $2}' /proc/$demo/status) \
$(ls /proc/$demo/task | wc -l) $(ls /proc/$demo/fd | wc -l)" >>"$dir/health.log"
    sleep 2
  done
}
monitor &
pids+=($!)
# Every 20 s a mutex profile must parse, and /metrics pass promtool's checks.
parse_failures=0 parses=0
start=$(date +%s)
end=$((start + warmup + duration))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep 20
  parses=$((parses + 1))
  curl -s -o "$dir/mutex.pb.gz" "$base/debug/pprof/mutex" &&
    go tool pprof -raw "$dir/mutex.pb.gz" >"$dir/pprof.out" 2>&1 || parse_failures=$((parse_failures + 1))
  if [[ " ${endpoints[*]} " == *" /metrics "* ]]; then
    parses=$((parses + 1))
    curl -s "$base/metrics" | promtool check metrics >"$dir/promtool.out" 2>&1 ||
      parse_failures=$((parse_failures + 1))
  fi
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true
pids=()
kill -TERM "$demo"
demo_status=0
wait "$demo" || demo_status=$?
kill "$receiver"
wait "$receiver" 2>/dev/null || true
trap - EXIT

warm_end=$((start + warmup))
cat "$dir"/client*.log >"$dir/requests.log"
{
  echo "lockprof soak: ${duration}s after ${warmup}s warm-up, $clients clients, limit ${limit}s"
  echo "endpoints: ${endpoints[*]}"
  [ ${#skipped[@]} -eq 0 ] || echo "not served (skipped): ${skipped[*]}"
  awk -v limit="$limit" '
    { n[$4]++; if ($2 != 200) err[$4]++; if ($3 > max[$4]) max[$4] = $3; sum[$4] += $3
      m = limit; if ($4 ~ /seconds=/) { split($4, a, "seconds="); m += a[2] }
      if ($3 > m) slow++
      total++; if ($2 != 200) errors++ }
    END {
      for (e in n) printf "  %-32s %7d requests %4d errors  mean %.3fs  max %.3fs\n", e, n[e], err[e], sum[e] / n[e], max[e]
      printf "requests %d errors %d slow %d\n", total, errors, slow
    }' "$dir/requests.log"
  # Open connections come and go (keep-alive, ?seconds= windows, uploads), and
  # the server's threads start on demand: "flat" compares the highest thread
  # and fd counts after the warm-up with the highest seen during it.
  awk -v w="$warm_end" -v slack_kb="$rss_slack_kb" -v slack_pct="$rss_slack_pct" '
    $1 < w { if ($3 > warm_threads) warm_threads = $3; if ($4 > warm_fds) warm_fds = $4; next }
    !started { started = 1; at_warm = $2; max_rss = $2 }
    { if ($2 > max_rss) max_rss = $2; last = $2
      if ($3 > threads) threads = $3; if ($4 > fds) fds = $4 }
    END {
      growth = max_rss - at_warm; allowed = at_warm * slack_pct / 100
      if (allowed < slack_kb) allowed = slack_kb
      printf "rss_kb at_warmup %d max_after %d final %d growth %d allowed %d\n", at_warm, max_rss, last, growth, allowed
      printf "threads max_warmup %d max_after %d fds max_warmup %d max_after %d\n", warm_threads, threads, warm_fds, fds
      printf "rss_flat %s\n", (growth <= allowed && threads <= warm_threads + 2 && fds <= warm_fds + 2) ? "yes" : "no"
    }' "$dir/health.log"
  echo "go tool pprof / promtool checks $parses failures $parse_failures"
  # requests.log: <unix ms> <status> <message>, one line per ingest request.
  awk -v need=$(((warmup + duration) / interval)) '
    { n++; if ($2 == 200) ok++; else { bad++; if (!first) first = $0 } }
    END { printf "uploads %d accepted %d rejected %d (at least %d wanted)\n", n, ok, bad, need
          if (bad) print "first rejection: " first
          printf "uploads_ok %s\n", (bad == 0 && ok >= need) ? "yes" : "no" }' \
    "$dir/uploads/requests.log" 2>/dev/null || echo "uploads_ok no (no requests.log)"
  echo "demo exit status $demo_status"
} | tee "$dir/summary.txt"
echo "soak: logs in $dir"

grep -q '^requests .* errors 0 slow 0$' "$dir/summary.txt" &&
  grep -q '^rss_flat yes$' "$dir/summary.txt" &&
  grep -q '^uploads_ok yes$' "$dir/summary.txt" &&
  [ "$parse_failures" -eq 0 ] && [ "$demo_status" -eq 0 ]
