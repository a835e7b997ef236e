#!/usr/bin/env bash
# Installs lockprof's headers from a build tree into a temporary prefix and
# checks what a user gets there:
#   - every lockprof header an installed header includes is installed;
#   - no installed header includes cpp-httplib, libdw/elfutils or generated
#     protobuf headers (users need none of them to build against lockprof),
#     nor a header by a path that only resolves in the source tree;
#   - nothing extra: every installed header is lockprof.h, a public header at
#     a module's root (all of which lockprof.h includes), or included by
#     another installed header.
# Usage: installed_headers_test.sh <build dir>
set -euo pipefail
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp" --component lockprof_headers >/dev/null
include=$tmp/include
root=$include/lockprof
test -f "$root/lockprof.h" || { echo "FAIL: lockprof.h is not installed"; exit 1; }

include_re='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*'
fail=0
problem() { echo "FAIL: $*"; fail=1; }
included=$tmp/included
: >"$included"
headers=$(cd "$include" && find lockprof -type f | sort)
for header in $headers; do
  case $header in
    *.h) ;;
    *) problem "$header: not a header"; continue ;;
  esac
  while IFS= read -r line; do
    name=$(sed -E "s/$include_re/\\1/" <<<"$line")
    case $name in
      lockprof/*)
        echo "$name" >>"$included"
        [ -f "$include/$name" ] || problem "$header includes $name, which is not installed" ;;
      httplib.h | */httplib.h | elfutils/* | dwarf.h | libdw.h | libelf.h | gelf.h | \
        google/protobuf/* | *.pb.h)
        problem "$header includes $name: users would need it to build" ;;
    esac
    if [[ $line =~ \"([^\"]+)\" && ! $name =~ ^(lockprof|absl)/ ]]; then
      problem "$header includes \"$name\", which resolves only in the source tree"
    fi
  done < <(grep -E "$include_re" "$include/$header" || true)
done

for header in $headers; do
  case $header in
    lockprof/lockprof.h) ;;
    lockprof/agent/*/* | lockprof/primitives/*/* | lockprof/server/*/*)
      grep -qxF "$header" "$included" || problem "$header is installed but no installed header includes it" ;;
    lockprof/agent/* | lockprof/primitives/* | lockprof/server/*)
      grep -qE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]$header[>\"]" "$root/lockprof.h" ||
        problem "$header is a public header that lockprof.h does not include" ;;
    *) problem "$header: installed outside the module folders" ;;
  esac
done

[ "$fail" -eq 0 ] || exit 1
echo "installed headers: $(wc -w <<<"$headers") headers, all includes resolve, none of httplib/libdw/protobuf"
