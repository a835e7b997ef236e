#!/usr/bin/env bash
# Installs lockprof from the build tree into a temporary prefix, builds the
# consumer project against it with find_package(lockprof), and runs it; then
# builds the same sources with `pkg-config --cflags --libs lockprof` alone,
# and runs that.
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
echo "install consumer (find_package): ok"

pc=$(find "$tmp/prefix" -name lockprof.pc)
[ -n "$pc" ] || { echo "FAIL: no lockprof.pc installed"; exit 1; }
# shellcheck disable=SC2046
c++ -std=c++17 -O1 -fno-omit-frame-pointer -o "$tmp/pc_consumer" "$consumer_src/main.cc" \
  "$consumer_src/fast_paths.cc" $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs lockprof)
out=$("$tmp/pc_consumer")
grep -q '^--- mutex:' <<<"$out"
grep -q '@ 0x' <<<"$out"
echo "install consumer (pkg-config): ok"
