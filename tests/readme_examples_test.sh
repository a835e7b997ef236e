#!/usr/bin/env bash
# README.md's examples, run as written against the running demo: every
# `curl` and `go tool pprof` line of its ```sh blocks and of its inline code
# (the port the demo got put for 6060), and every PromQL query of its
# ```promql block, answered by a real Prometheus scraping the demo. The
# commands are read from README.md each run, so an example that drifts
# from what lockprof serves (a lock name, a path, a flag) fails here.
#   go tool pprof -top   must list at least one function (its filters,
#                        -tagfocus included, must match the demo's samples),
#                        except a diff (-base) and mode=read (the demo has no
#                        reader/writer lock);
#   go tool pprof -list  must annotate a routine;
#   curl                 must fetch something that is not an error;
#   a PromQL query       must answer a positive value.
# Usage: readme_examples_test.sh <source dir> <lockprof-demo>
set -euo pipefail
readme=$(realpath "$1/README.md")
demo_bin=$(realpath "$2")
export GOCACHE=${GOCACHE:-/tmp/lockprof-gocache} HOME=${HOME:-/tmp} GOFLAGS=-mod=mod GOPROXY=off
export PPROF_TMPDIR=/tmp
dir=$(mktemp -d /tmp/lockprof-readme.XXXXXX)
cleanup() {
  kill "${demo:-}" "${prometheus:-}" "${window:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail=0
problem() {
  echo "FAIL: $*"
  fail=1
}

# Polls `command...` every 0.1 s until it succeeds, at most $1 seconds.
within() {
  local limit=$1 i
  shift
  for ((i = 0; i < limit * 10; ++i)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

"$demo_bin" --addr=127.0.0.1:0 --duration=600 >"$dir/demo.out" 2>"$dir/demo.err" &
demo=$!
port_of_demo() {
  port=$(sed -n 's|^admin endpoint: http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$dir/demo.out")
  [ -n "$port" ]
}
within 30 port_of_demo || { cat "$dir/demo.err"; echo "FAIL: the demo did not start"; exit 1; }
base=http://127.0.0.1:$port
# Every example needs data to show: wait until the mutex profile has
# charged Cache::Set (what the README's examples look for) and the hold
# profile (the index counts its samples) has samples.
has_samples() {
  curl -s "$base/debug/pprof/mutex?debug=1" | grep -q 'demo::Cache::Set' &&
    curl -s "$base/debug/pprof/" | grep -Eq "<td>[1-9][0-9]*</td><td><a href='hold\?debug=1'>"
}
within 60 has_samples || problem "the demo's profiles stayed empty"

# --- The shell examples.
{
  awk '/^```sh$/ { on = 1; next } /^```/ { on = 0 } on' "$readme"
  grep -o '`\(curl\|go tool pprof\) [^`]*`' "$readme" | tr -d '`'
} | grep -E '^(curl|go tool pprof) ' | grep -E '127\.0\.0\.1:6060|\.pb\.gz' |
  sed -E 's/[[:space:]]+#.*$//' >"$dir/commands"
[ "$(wc -l <"$dir/commands")" -ge 10 ] || problem "fewer README commands than expected: $(cat "$dir/commands")"

cd "$dir"
n=0
while IFS= read -r command; do
  run=${command//127.0.0.1:6060/127.0.0.1:$port}
  n=$((n + 1))
  if [[ $run == *" -seconds "* ]]; then
    # A window: runs while the others do; checked at the end.
    (bash -c "$run" </dev/null >"window.out" 2>&1; echo "$?" >"window.status") &
    window=$!
    window_command=$command
    continue
  fi
  # stdout is checked; stderr (curl's progress meter, pprof's notes) is
  # only shown on failure.
  out=$(bash -c "$run" </dev/null 2>"$dir/stderr") || {
    problem "exit $?: $command"$'\n'"$out$(cat "$dir/stderr")"
    continue
  }
  case $run in
    curl*" -o "*)
      file=$(echo "$run" | sed -E 's/.* -o ([^ ]+) .*/\1/')
      gzip -t "$file" 2>/dev/null || problem "not a gzipped profile: $command"
      ;;
    curl*)
      # A served profile, not an error text ("Unknown profile", "404 ...").
      [[ -n $out && $out != "Unknown profile"* && $out != "404"* ]] ||
        problem "$command"$'\n'"$out"
      ;;
    *" -list "*)
      [[ $out == *"ROUTINE ====="* ]] || problem "nothing listed: $command"$'\n'"$out"
      ;;
    *" -top "*)
      if [[ $run != *" -base "* && $run != *"mode=read"* ]]; then
        # The table's rows follow its header line ("flat  flat%  sum%").
        echo "$out" | awk '/flat%/ { on = 1; next } on && NF >= 6 { rows++ } END { exit !rows }' ||
          problem "no function listed: $command"$'\n'"$out$(cat "$dir/stderr")"
      fi
      ;;
  esac
done <"$dir/commands"
echo "ran $n README commands against the demo"

# --- The PromQL examples, through Prometheus scraping the demo every second.
prom_port=$(((RANDOM % 20000) + 30000))
while ss -ltnH "sport = :$prom_port" | grep -q .; do prom_port=$(((RANDOM % 20000) + 30000)); done
mkdir -p "$dir/data"
cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: lockprof
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address="127.0.0.1:$prom_port" >"$dir/prometheus.log" 2>&1 &
prometheus=$!
ready() { curl -sf "http://127.0.0.1:$prom_port/-/ready" >/dev/null; }
within 60 ready || { tail -20 "$dir/prometheus.log"; problem "prometheus did not start"; }
# The first sample value of an instant query's answer must be positive.
positive() {
  answer=$(curl -s -G --max-time 5 --data-urlencode "query=$1" \
    "http://127.0.0.1:$prom_port/api/v1/query")
  value=$(echo "$answer" | sed -n 's/.*"value":\[[^,]*,"\([^"]*\)".*/\1/p')
  awk -v v="$value" 'BEGIN { exit !(v != "" && v != "NaN" && v + 0 > 0) }'
}
queries=0
while IFS= read -r query; do
  queries=$((queries + 1))
  within 60 positive "$query" || problem "PromQL answered no positive value: $query"$'\n'"$answer"
done < <(awk '/^```promql$/ { on = 1; next } /^```/ { on = 0 } on && !/^#/ && NF' "$readme")
[ "$queries" -ge 4 ] || problem "fewer README PromQL queries than expected ($queries)"
echo "answered $queries README PromQL queries"

if [ -n "${window:-}" ]; then
  wait "$window" || true
  window=
  [ "$(cat "$dir/window.status")" = 0 ] || problem "$window_command"$'\n'"$(cat "$dir/window.out")"
fi
kill -0 "$demo" 2>/dev/null || problem "the demo exited early: $(cat "$dir/demo.err")"
[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
