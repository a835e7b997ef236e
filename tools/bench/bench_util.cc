#include "bench_util.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "lockprof/agent/record/thread_state.h"

namespace bench {

namespace {
// Remembered before any benchmark changes them, so kDefault restores the
// defaults (or whatever LOCKPROF_* the environment set).
struct Defaults {
  int fraction = lockprof::SetMutexProfileFraction(-1);
  int64_t block = lockprof::BlockProfileRate();
  int hold = lockprof::SetHoldProfileRate(-1);
};
const Defaults& GetDefaults() {
  static const Defaults d;
  return d;
}
const bool g_defaults_taken = (GetDefaults(), true);

// Every row runs in a multi-threaded process, as a real service does: one
// idle thread, started before any benchmark. A process that never started a
// second thread can make the uncontended rows of other locks look far
// cheaper than in any real program: on an AMD EPYC, std::mutex lock+unlock
// measured 3.3 ns single-threaded and 12.5-13.8 ns once a second thread
// existed (on the 2-vCPU KVM guest of BENCHMARKS.md the two differ by ~5%).
// LOCKPROF_BENCH_SINGLE_THREADED=1 leaves the process single-threaded until
// a contended row starts threads, to measure that case too (run the
// uncontended rows alone: --benchmark_filter=^uncontended).
const bool g_idle_thread_started = [] {
  const char* single = std::getenv("LOCKPROF_BENCH_SINGLE_THREADED");
  if (single != nullptr && single[0] == '1') return false;
  std::thread([] {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }).detach();
  return true;
}();

// absl::Mutex as its users run it in production. A release build of Abseil
// (NDEBUG) has deadlock detection off; Debian's libabsl is built without
// NDEBUG, where it is on by default, and every Lock() then updates a
// process-wide lock graph under a global lock: 4-6 times the uncontended
// pair's cost, and a second lock behind every contended row.
const bool g_absl_deadlock_detection_off =
    (absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore), true);
}  // namespace

WriterPreferringRwlock::WriterPreferringRwlock() {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&rw_, &attr);
  pthread_rwlockattr_destroy(&attr);
}

const char* ProfilingName(Profiling p) {
  switch (p) {
    case kOff:
      return "off";
    case kDefault:
      return "default";
    case kAll:
      return "all_1";
    case kGoAll:
      return "go_all_1";
    case kLockOrder:
      return "lock_order";
  }
  return "?";
}

void ApplyProfiling(Profiling p) {
  const Defaults& d = GetDefaults();
  int fraction = 0, hold = 0;
  int64_t block = 0;
  switch (p) {
    case kOff:
      break;
    case kDefault:
      fraction = d.fraction, block = d.block, hold = d.hold;
      break;
    case kAll:
      fraction = 1, block = 1, hold = 1;
      break;
    case kGoAll:
      fraction = 1, block = 1, hold = d.hold;
      break;
    case kLockOrder:
      fraction = d.fraction, block = d.block, hold = d.hold;
      break;
  }
#if __has_include("lockprof/agent/lock_order.h")
  lockprof::SetLockOrderChecking(p == kLockOrder ? lockprof::LockOrderMode::kReport
                                                 : lockprof::LockOrderMode::kOff);
#endif
  lockprof::SetMutexProfileFraction(fraction);
  lockprof::SetBlockProfileRate(block);
  lockprof::SetHoldProfileRate(hold);
  // Benchmark threads other than the first are fresh threads per run; the
  // first is reused, and would otherwise finish a stride drawn for the
  // previous setting (up to 65536 acquisitions with hold sampling off).
  lockprof::agent::tls_state.hold_countdown = 0;
}

std::vector<int> ContendedThreadCounts() {
  // LOCKPROF_BENCH_THREADS=2,4,8,16 runs those counts whatever the machine
  // has: more threads than cores is where a lock that spins while its holder
  // is preempted loses most.
  std::vector<int> counts;
  if (const char* list = std::getenv("LOCKPROF_BENCH_THREADS")) {
    for (const char* p = list; *p != '\0';) {
      char* end;
      const long n = std::strtol(p, &end, 10);
      if (end == p) break;
      if (n >= 2 && n <= 1024) counts.push_back(int(n));
      p = *end == ',' ? end + 1 : end;
    }
    if (!counts.empty()) return counts;
  }
  const int hw = std::max(2, int(std::thread::hardware_concurrency()));
  for (int n = 2; n < hw; n *= 2) counts.push_back(n);
  counts.push_back(hw);
  return counts;
}

void AtContendedThreadCounts(benchmark::internal::Benchmark* b) {
  for (int n : ContendedThreadCounts()) b->Threads(n);
  b->UseRealTime();
}

double NanosPerTick() {
  static const double ns_per_tick = [] {
    auto t0 = std::chrono::steady_clock::now();
    uint64_t c0 = Ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto t1 = std::chrono::steady_clock::now();
    uint64_t c1 = Ticks();
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(c1 - c0);
  }();
  return ns_per_tick;
}

LatencyRecorder::LatencyRecorder(int64_t iterations) {
  const uint64_t iters = uint64_t(std::max<int64_t>(iterations, 0));
  stride_ = iters / kMaxSamples + 1;
  if (iters == 0) return;
  ticks_.resize(std::min<uint64_t>(iters / stride_ + 1, kMaxSamples));
  NanosPerTick();  // Calibrated outside the timed loop.
}

void LatencyRecorder::Report(benchmark::State& state) {
  if (n_ == 0) return;
  auto begin = ticks_.begin(), end = ticks_.begin() + ptrdiff_t(n_);
  auto at = [&](double q) {
    auto nth = begin + ptrdiff_t(std::min<double>(double(n_) - 1, q * double(n_)));
    std::nth_element(begin, nth, end);
    return double(*nth) * NanosPerTick();
  };
  using C = benchmark::Counter;
  state.counters["p50_ns"] = C(at(0.50), C::kAvgThreads);
  state.counters["p99_ns"] = C(at(0.99), C::kAvgThreads);
  state.counters["p999_ns"] = C(at(0.999), C::kAvgThreads);
  state.counters["max_ns"] =
      C(double(*std::max_element(begin, end)) * NanosPerTick(), C::kAvgThreads);
}

void HandoffCounter::Report(benchmark::State& state) const {
  // Summed over threads, divided by all threads' iterations.
  state.counters["handoffs"] =
      benchmark::Counter(double(handoffs_), benchmark::Counter::kAvgIterations);
}

}  // namespace bench
