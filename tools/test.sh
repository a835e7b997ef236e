#!/usr/bin/env bash
# Builds lockprof and runs every test: the optimised build, then the whole
# suite again under ThreadSanitizer and under AddressSanitizer+UBSan (the
# latter with LOCKPROF_LOCK_ORDER=abort and the pthread interposer linked
# into every test program), then the install-and-consume check. Set LOCKPROF_TEST_BUILDS to a subset
# ("release preload preload-order tsan asan") to run fewer. "preload" runs
# the release build's suite again with liblockprof_preload.so loaded into
# every test process (after "release", which builds it); "preload-order"
# once more with LOCKPROF_LOCK_ORDER=abort as well, so that a lock-order
# inversion among the interposed pthread locks of any test ends it. The last line counts every
# build's tests: passed, failed, and skipped (only the skips
# tools/allowed_skips.txt allows; any other skip is a failure).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh test
export GOCACHE=${GOCACHE:-/tmp/lockprof-gocache} HOME=${HOME:-/root}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
builds=${LOCKPROF_TEST_BUILDS:-release preload preload-order tsan asan}
total_pass=0
total_fail=0
total_skip=0

# Runs ctest in a build directory (extra arguments passed on) and adds its
# passes, failures and allowed skips to the totals (tools/ctest_summary.sh).
ctest_and_count() {  # name, build dir, log file, ctest arguments...
  local name=$1 dir=$2 log=$3 rc=0
  shift 3
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j1 "$@") 2>&1 | tee "$log" || rc=$?
  local pass fail skip
  read -r pass fail skip < <(tools/ctest_summary.sh "$log")
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  total_skip=$((total_skip + skip))
  [ "$rc" -eq 0 ] && [ "$fail" -eq 0 ] || echo "=== $name: FAILED"
}

run_suite() {  # name, build dir, cmake args...
  local name=$1 dir=$2
  shift 2
  echo "=== lockprof tests: $name ($dir)"
  cmake -S . -B "$dir" -G Ninja "${launcher[@]}" "$@" >/dev/null
  ninja -C "$dir"
  ctest_and_count "$name" "$dir" "$dir/ctest.log"
}

# The release build's tests again, with the pthread interposer in every test
# process. Not rerun: the soak and the install check (they test nothing the
# interposer changes and take minutes), and the tests whose child programs
# link lockprof themselves and start its endpoint or uploader from the
# environment, or count its start-up messages (two lockprof copies race for
# the port and both report a malformed variable: README, "Profile an
# existing program"). Nor the contention page's browser tests: LD_PRELOAD
# would load the interposer into Chromium's processes, which is not what
# they test (the page's server side runs under the preload in
# ContentionPageTest.*), and the pprof one's program links lockprof itself.
run_preload_suite() {  # name
  echo "=== lockprof tests ($1): release suite under LD_PRELOAD=liblockprof_preload.so"
  ninja -C build lockprof_preload
  LD_PRELOAD="$PWD/build/primitives/interpose/liblockprof_preload.so" \
    ctest_and_count "$1" build "build/ctest-$1.log" \
    -E '^(soak_short|install_consumer|shared_consumer|contention_page|contention_page_pprof|LifecycleTest\..*|UploaderTest\..*|PyroscopeProtocol\..*|StartupPrecedenceTest\..*|DeadlockTest\.HeldLocksShowARealDeadlockWhileItHangs|DemoTest\.EnvironmentAddressWinsOverAddrAndTheDemoServesThere|EnvTest\.MalformedEnvironmentIsReportedOnceAndIgnored)$'
}

for b in $builds; do
  case $b in
    release) run_suite release build -DCMAKE_BUILD_TYPE=RelWithDebInfo ;;
    preload) run_preload_suite preload ;;
    # Tests that take inversions on purpose set their own mode.
    preload-order) LOCKPROF_LOCK_ORDER=abort run_preload_suite preload-order ;;
    tsan) TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      run_suite tsan build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKPROF_SANITIZE=thread \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DLOCKPROF_BUILD_BENCHMARKS=OFF ;;
    # With lock-order checking in abort mode: any inversion in lockprof, its
    # tests or the demo ends the test that took it (README, "Finding
    # deadlocks"); tests that take inversions on purpose set their own mode.
    # Every test program has the pthread interposer linked in
    # (lockprof::interpose), so the interposer runs under ASan+UBSan too,
    # every pthread lock of the suite through it.
    asan) LOCKPROF_LOCK_ORDER=abort ASAN_OPTIONS="detect_leaks=1" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
      run_suite asan build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKPROF_SANITIZE=address \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DLOCKPROF_BUILD_BENCHMARKS=OFF \
      -DLOCKPROF_TEST_WITH_INTERPOSER=ON ;;
    *) echo "unknown build $b" >&2; exit 2 ;;
  esac
done
echo "lockprof: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
