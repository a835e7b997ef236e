#!/usr/bin/env bash
# Builds lockprof and runs every test: the optimised build, then the whole
# suite again under ThreadSanitizer and under AddressSanitizer+UBSan, then the
# install-and-consume check. Set LOCKPROF_TEST_BUILDS to a subset
# ("release tsan asan") to run fewer. The last line counts every build's
# tests: passed, failed, and skipped (only the skips tools/allowed_skips.txt
# allows; any other skip is a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh test
export GOCACHE=${GOCACHE:-/tmp/lockprof-gocache} HOME=${HOME:-/root}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
builds=${LOCKPROF_TEST_BUILDS:-release tsan asan}
total_pass=0
total_fail=0
total_skip=0

run_suite() {  # name, build dir, cmake args...
  local name=$1 dir=$2
  shift 2
  echo "=== lockprof tests: $name ($dir)"
  cmake -S . -B "$dir" -G Ninja "${launcher[@]}" "$@" >/dev/null
  ninja -C "$dir"
  local log="$dir/ctest.log" rc=0
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j1) 2>&1 | tee "$log" || rc=$?
  # Skips count as failures unless tools/allowed_skips.txt lists them.
  local pass fail skip
  read -r pass fail skip < <(tools/ctest_summary.sh "$log")
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  total_skip=$((total_skip + skip))
  [ "$rc" -eq 0 ] && [ "$fail" -eq 0 ] || echo "=== $name: FAILED"
}

for b in $builds; do
  case $b in
    release) run_suite release build -DCMAKE_BUILD_TYPE=RelWithDebInfo ;;
    tsan) TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      run_suite tsan build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKPROF_SANITIZE=thread \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DLOCKPROF_BUILD_BENCHMARKS=OFF ;;
    asan) ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
      run_suite asan build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKPROF_SANITIZE=address \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DLOCKPROF_BUILD_BENCHMARKS=OFF ;;
    *) echo "unknown build $b" >&2; exit 2 ;;
  esac
done
echo "lockprof: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
