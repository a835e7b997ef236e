#!/usr/bin/env bash
# Packs what tools/bench/device/run_scaling.sh needs on a machine that has
# none of lockprof's libraries (no Abseil, protobuf, libdw, libbenchmark,
# httplib) and no Go: .device-bundle/ at the repo root, holding
#
#   lockprof_bench        the optimised benchmark (Release, -g, as
#                         tools/bench/run_benchmarks.sh builds it)
#   lib*.so*              every shared library it loads, glibc included
#   ld-linux-x86-64.so.2  the dynamic loader those libraries were built with
#   cache_bench_go        tools/bench/go/cache_bench.go, static (CGO_ENABLED=0)
#   go-version.txt        the Go toolchain that built it (the device has none
#                         to ask)
#   build-info.txt        commit, compiler, packages: what the numbers measure
#
# Fully static linking is not possible (Debian ships no libbenchmark.a or
# libzstd.a), so run_scaling.sh starts the benchmark through the bundled
# loader with --library-path: nothing is taken from the device's own /lib,
# whose glibc may be older or newer than the one we built against.
#
#   tools/bench/device/pack.sh          # BUILD_DIR (default build-bench)
#
# Then carry .device-bundle to the device (see README.md beside this file).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
BUNDLE=$ROOT/.device-bundle

"$ROOT/tools/deps.sh" bench

# --- Build: run_benchmarks.sh's, in its directory (build_bench.sh); at
# --- most two jobs, the build machine being shared -----------------------
source "$ROOT/tools/bench/build_bench.sh"
build_bench "$BUILD_DIR" 2 lockprof_bench
BIN=$BUILD_DIR/tools/bench/lockprof_bench

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE"

# --- The benchmark. Its DWARF stays (the profile/* rows symbolize through
# --- it, should anyone run them there), compressed to a third of its size;
# --- libdw reads compressed sections. The contended rows symbolize nothing.
objcopy --compress-debug-sections=zlib "$BIN" "$BUNDLE/lockprof_bench"

# --- Its libraries, by the paths this machine's loader resolves, copied as
# --- plain files under their sonames (symbolic links would travel as links
# --- to nothing). ldd prints the loader as its absolute PT_INTERP path.
mapfile -t libs < <(ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}')
for lib in "${libs[@]}"; do
  # Debian's libraries come stripped already; one built locally with its
  # symbols would not, and only .dynsym (kept) is needed to load it.
  strip --strip-unneeded -o "$BUNDLE/$(basename "$lib")" "$(readlink -f "$lib")"
done
[[ -f $BUNDLE/ld-linux-x86-64.so.2 && -f $BUNDLE/libc.so.6 ]] || {
  echo "pack.sh: ldd named no loader or libc for $BIN" >&2
  exit 1
}
chmod 0755 "$BUNDLE"/*

# --- The Go workload: static, so it needs nothing on the device ----------
(cd "$ROOT/tools/bench/go" &&
  env CGO_ENABLED=0 "${go_offline_env[@]}" go build -trimpath -o "$BUNDLE/cache_bench_go" cache_bench.go)
if ldd "$BUNDLE/cache_bench_go" >/dev/null 2>&1; then
  echo "pack.sh: cache_bench_go is dynamically linked" >&2
  exit 1
fi
# "go version BINARY" reads the toolchain recorded in the binary itself.
go version "$BUNDLE/cache_bench_go" | awk '{print $2}' >"$BUNDLE/go-version.txt"

{
  echo "commit=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo -dirty)"
  echo "packed=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "compiler=$(g++ --version | head -1)"
  echo "glibc=$(ldd --version | head -1 | awk '{print $NF}')"
  echo "libbenchmark=$(dpkg-query -W -f='${Version}' libbenchmark-dev 2>/dev/null || echo unknown)"
  echo "abseil=$(dpkg-query -W -f='${Version}' libabsl-dev 2>/dev/null || echo unknown)"
} >"$BUNDLE/build-info.txt"

# --- Check: the bundle runs through its own loader, and its size ---------
"$BUNDLE/ld-linux-x86-64.so.2" --library-path "$BUNDLE" "$BUNDLE/lockprof_bench" \
  --benchmark_list_tests --benchmark_filter='^(cache|empty)/' >/dev/null
# The device takes 64 MiB in all, the repository's own files included.
mib=$(($(du -sb "$BUNDLE" | cut -f1) / 1048576))
echo "Packed $(find "$BUNDLE" -type f | wc -l) files into $BUNDLE: $mib MiB"
if ((mib > 48)); then
  echo "pack.sh: the bundle is over 48 MiB" >&2
  exit 1
fi
