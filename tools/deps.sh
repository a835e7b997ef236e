#!/usr/bin/env bash
# Installs the Debian packages lockprof needs, idempotently and quietly when
# they are already there. Usage: tools/deps.sh build|demo|test|bench
set -euo pipefail
build=(cmake ninja-build g++ pkg-config libabsl-dev libprotobuf-dev protobuf-compiler
  libcpp-httplib-dev zlib1g-dev libdw-dev libgtest-dev libbenchmark-dev)
case "${1:-build}" in
  build) want=("${build[@]}") ;;
  # The demo's banner and README's next steps read its profiles with curl and go tool pprof.
  demo) want=("${build[@]}" curl golang-go) ;;
  test) want=("${build[@]}" clang libclang-rt-14-dev golang-go prometheus curl iproute2 ccache openssl
    libsqlite3-dev libunwind8 xz-utils python3 chromium locales) ;;
  # soak.sh checks /metrics with promtool.
  bench) want=("${build[@]}" golang-go curl python3 prometheus) ;;
  *) echo "usage: $0 build|demo|test|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "lockprof: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
