#!/usr/bin/env bash
# Installs lockprof from the build tree into a temporary prefix, builds the
# consumer project against it with find_package(lockprof), and runs it.
set -euo pipefail
build=$1
consumer_src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$consumer_src" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
ninja -C "$tmp/build" >/dev/null
out=$("$tmp/build/consumer")
echo "$out" | head -3
grep -q '^--- mutex:' <<<"$out"
grep -q '@ 0x' <<<"$out"
test -f "$tmp/prefix/include/lockprof/lockprof.h"
test -f "$tmp/prefix/lib/cmake/lockprof/lockprofConfig.cmake" || test -f "$tmp/prefix/lib/x86_64-linux-gnu/cmake/lockprof/lockprofConfig.cmake"
echo "install consumer: ok"
