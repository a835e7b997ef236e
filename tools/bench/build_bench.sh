# shellcheck shell=bash
# Sourced (with ROOT set) by run_benchmarks.sh and device/pack.sh, so that
# both measure the same build and share its directory.

# build_bench BUILD_DIR JOBS TARGET...: the optimised benchmark build, with
# debug info so that profile builds symbolize through DWARF as a user's
# RelWithDebInfo build would; tests off.
build_bench() {
  local dir=$1 jobs=$2
  shift 2
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-g \
    -DLOCKPROF_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
  ninja -C "$dir" -j"$jobs" "$@" >/dev/null
}

# The environment the Go workload is built and run in: a writable cache and
# home, the standard library only, never the network.
# shellcheck disable=SC2034  # used by the scripts that source this one
go_offline_env=(GOCACHE="${GOCACHE:-/tmp/lockprof-gocache}" HOME="${HOME:-/tmp}"
  GOFLAGS=-mod=mod GOPROXY=off)
