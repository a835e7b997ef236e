#!/usr/bin/env bash
# lockprof as a shared library, pulled into another project:
#  1. tests/consumer built with add_subdirectory(<lockprof source tree>) and
#     BUILD_SHARED_LIBS=ON, and run: it prints the mutex profile of its
#     contended lock. The build is kept in <build dir>/consumer-shared, so
#     that a rerun rebuilds only what changed (Release: no debug info to
#     build, and ccache can share objects across directories).
#  2. That build installed into a temporary prefix: liblockprof.so alone,
#     exporting lockprof's API and none of its internals (nm -D), and
#     marked never to be unloaded (readelf -d).
#  3. tests/consumer built with find_package against the installed library,
#     and run with LOCKPROF_ADMIN_ADDR: the object that starts the admin
#     server is in the library (no -u needed); curl gets the mutex profile.
#     It also loads tests/lifecycle/plugin.cc, built against the installed
#     headers without linking lockprof: the plugin's locks resolve to the
#     library's exports.
#  4. The same sources built with `pkg-config --cflags --libs lockprof`.
# Usage: shared_consumer_test.sh <build dir> <source dir>
set -euo pipefail
build=$1
src=$2
consumer=$src/tests/consumer
inner=$build/consumer-shared
tmp=$(mktemp -d)
consumer_pid=
cleanup() {
  [ -n "$consumer_pid" ] && kill "$consumer_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)

quiet() {  # what, command...: runs the command, shows its output only if it fails
  local what=$1
  shift
  "$@" >"$tmp/log" 2>&1 || { tail -40 "$tmp/log"; echo "FAIL: $what"; exit 1; }
}

expect_mutex_profile() {  # what, output
  grep -q '^--- mutex:' <<<"$2" || { echo "FAIL: $1: no mutex profile"; exit 1; }
  grep -q '@ 0x' <<<"$2" || { echo "FAIL: $1: the mutex profile has no samples"; exit 1; }
  echo "$1: ok"
}

# 1. add_subdirectory, shared.
quiet "configuring the add_subdirectory consumer" \
  cmake -S "$consumer" -B "$inner" -G Ninja "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCONSUMER_LOCKPROF_SOURCE="$src" -DBUILD_SHARED_LIBS=ON -DLOCKPROF_INSTALL=ON
quiet "building the add_subdirectory consumer" ninja -C "$inner" -j2
expect_mutex_profile "add_subdirectory consumer" "$("$inner/consumer")"

# 2. Installed: the library, and what it exports.
quiet "installing the shared build" cmake --install "$inner" --prefix "$tmp/prefix"
lib=$(find "$tmp/prefix" -name 'liblockprof.so' | head -1)
[ -n "$lib" ] || { echo "FAIL: no liblockprof.so installed"; exit 1; }
if [ -n "$(find "$tmp/prefix" -name 'liblockprof_*.a')" ]; then
  echo "FAIL: a shared install carries the static archives"
  exit 1
fi
# Marked never to be unloaded: a dlclose() of the last plugin that linked it
# would leave its pthread keys' destructors pointing into unmapped code.
readelf -d "$lib" | grep -q 'Flags:.*NODELETE' || {
  echo "FAIL: liblockprof.so can be unloaded (no DF_1_NODELETE)"
  exit 1
}
nm -D --defined-only -C "$lib" | cut -d' ' -f3- | sort >"$tmp/exports"
exported=$(grep -c 'lockprof::' "$tmp/exports" || true)
# Internals that must stay inside: the server, the HTTP and DWARF libraries,
# protobuf, and the agent's rooms that no public inline path reaches.
if grep -E 'lockprof::server::|httplib|perftools::|google::protobuf|dwfl|Dwarf|lockprof::agent::(Symbolizer|ResolvedProfile|EncodePprof|Gzip|Resolve|StackTable|Table\(|PromText|Uploader|ProfileWindow)|lockprof_(uploader_)?autostart' \
  "$tmp/exports"; then
  echo "FAIL: liblockprof.so exports the internals above"
  exit 1
fi
for api in 'lockprof::Mutex::UnlockSlow()' 'lockprof::StartAdminServer(' 'lockprof::WriteProfile(' \
  'lockprof::SetMutexProfileFraction(int)' 'lockprof::DeltaProfiler::WriteTo('; do
  grep -qF "$api" "$tmp/exports" || { echo "FAIL: liblockprof.so does not export $api"; exit 1; }
done
echo "liblockprof.so: exports $exported lockprof symbols, no internals"

# 3. find_package against the installed library; served over HTTP.
quiet "configuring the find_package consumer" \
  cmake -S "$consumer" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$tmp/prefix"
quiet "building the find_package consumer" ninja -C "$tmp/build"
libs=$(ldd "$tmp/build/consumer")
grep -q "$tmp/prefix.*liblockprof.so" <<<"$libs" ||
  { echo "FAIL: the consumer does not load the installed liblockprof.so"; echo "$libs"; exit 1; }
mkfifo "$tmp/stdin"
quiet "building the plugin" c++ -std=c++17 -O1 -shared -fPIC -o "$tmp/plugin.so" \
  "$src/tests/lifecycle/plugin.cc" -I"$tmp/prefix/include"
LOCKPROF_ADMIN_ADDR=127.0.0.1:0 "$tmp/build/consumer" plugin "$tmp/plugin.so" serve \
  <"$tmp/stdin" >"$tmp/out" &
consumer_pid=$!
exec 3>"$tmp/stdin"
for _ in $(seq 100); do
  grep -q '^serving on port' "$tmp/out" && break
  sleep 0.1
done
port=$(sed -n 's/^serving on port //p' "$tmp/out")
[ -n "$port" ] || { echo "FAIL: the installed-library consumer does not serve"; cat "$tmp/out"; exit 1; }
served=$(curl -fsS "http://127.0.0.1:$port/debug/pprof/mutex?debug=1")
exec 3>&-
wait "$consumer_pid"
consumer_pid=
expect_mutex_profile "installed shared library consumer, served" "$served"

# 4. pkg-config against the same install.
pc_dir=$(dirname "$(find "$tmp/prefix" -name lockprof.pc)")
# shellcheck disable=SC2046
quiet "building the pkg-config consumer" c++ -std=c++17 -O1 -fno-omit-frame-pointer -o "$tmp/pc_consumer" "$consumer/main.cc" \
  "$consumer/fast_paths.cc" $(PKG_CONFIG_PATH=$pc_dir pkg-config --cflags --libs lockprof)
expect_mutex_profile "pkg-config consumer (shared)" \
  "$(LD_LIBRARY_PATH=$(dirname "$lib") "$tmp/pc_consumer")"
