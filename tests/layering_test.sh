#!/usr/bin/env bash
# The include rules between lockprof's rooms (ARCHITECTURE.md), checked over
# the sources. Data flows one way: primitives record into the agent, the agent
# samples, aggregates and builds profiles, the server serves them.
#   agent/        never includes primitives/ or server/
#   agent/base/   includes no other lockprof room (env, fork: the leaves)
#   agent/record/, agent/tables/, agent/deadlock/lock_graph.* (the recording
#                 side) never include agent/pprof/, agent/symbolize/,
#                 agent/pyroscope/ (nor deadlock/reports.h)
#   primitives/   include only agent/'s public headers, agent/record/ and
#                 agent/base/ (never server/, proto/ or the serving side)
#   server/handlers/ stay transport-free: no <httplib.h>, directly or through
#                 any header they include
#   <httplib.h>   only in server/httplib/, server/admin_server.cc and
#                 agent/pyroscope/ (the uploader's HTTP client)
#   libdw         only in agent/symbolize/; generated protobuf only in agent/pprof/
# Usage: layering_test.sh <source dir>
set -euo pipefail
cd "$1"
fail=0
problem() { echo "FAIL: $*"; fail=1; }
include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*'

includes() {  # file -> the names it includes, one a line
  grep -E "$include_re" "$1" | sed -E "s/$include_re/\\1/" || true
}

# file -> the lockprof headers it includes, transitively (as source paths).
declare -A closure_seen
closure() {
  local name
  for name in $(includes "$1"); do
    case $name in lockprof/*) ;; *) continue ;; esac
    name=${name#lockprof/}
    [ -n "${closure_seen[$name]:-}" ] && continue
    closure_seen[$name]=1
    echo "$name"
    [ -f "$name" ] && closure "$name"
  done
}

sources=$(find agent primitives server -name '*.h' -o -name '*.cc' | sort)
[ -n "$sources" ] || { echo "FAIL: no sources under $PWD"; exit 1; }
for file in $sources; do
  for name in $(includes "$file"); do
    case $file:$name in
      agent/*:lockprof/primitives/* | agent/*:lockprof/server/*)
        problem "$file includes $name: the agent never includes primitives or server" ;;
      agent/base/*:lockprof/agent/base/*) ;;
      agent/base/*:lockprof/*)
        problem "$file includes $name: agent/base/ includes no other room" ;;
      agent/record/*:lockprof/agent/pprof/* | agent/record/*:lockprof/agent/symbolize/* | \
        agent/record/*:lockprof/agent/pyroscope/* | agent/tables/*:lockprof/agent/pprof/* | \
        agent/tables/*:lockprof/agent/symbolize/* | agent/tables/*:lockprof/agent/pyroscope/*)
        problem "$file includes $name: recording never includes the serving side" ;;
      # The lock-order graph is recorded into by the thread that takes a new edge.
      agent/deadlock/lock_graph.*:lockprof/agent/pprof/* | \
        agent/deadlock/lock_graph.*:lockprof/agent/symbolize/* | \
        agent/deadlock/lock_graph.*:lockprof/agent/pyroscope/* | \
        agent/deadlock/lock_graph.*:lockprof/agent/deadlock/reports.h)
        problem "$file includes $name: the lock-order graph is recording side" ;;
      primitives/*:lockprof/primitives/* | primitives/*:lockprof/agent/record/* | \
        primitives/*:lockprof/agent/base/*) ;;
      # The interposer names an unnamed lock by the data symbol at its address.
      primitives/interpose/*:lockprof/agent/symbolize/demangle.h) ;;
      primitives/*:lockprof/agent/*/*)
        problem "$file includes $name: primitives record through agent/record/ only" ;;
      primitives/*:lockprof/agent/*) ;;
      primitives/*:lockprof/*)
        problem "$file includes $name: primitives include only the agent" ;;
    esac
    case $file:$name in
      server/httplib/*:httplib.h | server/admin_server.cc:httplib.h | agent/pyroscope/*:httplib.h) ;;
      *:httplib.h) problem "$file includes <httplib.h>: only server/httplib/ (and the uploader's client) may" ;;
      agent/symbolize/*:elfutils/* | agent/symbolize/*:dwarf.h) ;;
      *:elfutils/* | *:dwarf.h) problem "$file includes <$name>: libdw stays in agent/symbolize/" ;;
      agent/pprof/*:*.pb.h | agent/pprof/*:google/protobuf/*) ;;
      *:*.pb.h | *:google/protobuf/*) problem "$file includes $name: protobuf stays in agent/pprof/" ;;
    esac
  done
done

for file in $(find server/handlers -name '*.h' -o -name '*.cc' | sort); do
  closure_seen=()
  for header in $(closure "$file"); do
    [ -f "$header" ] && includes "$header" | grep -x 'httplib.h' >/dev/null &&
      problem "$file includes <httplib.h> through $header: handlers are transport-free"
  done
done

[ "$fail" -eq 0 ] || exit 1
echo "layering: $(wc -w <<<"$sources") files follow the include rules"
