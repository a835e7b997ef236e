// lockprof::CondVar's timeouts are steady_clock's: the profiles' clock,
// MonotonicNanos(), scales the TSC and may drift from CLOCK_MONOTONIC (NTP
// slews the one, not the other), and a wait_for measured on it ended early
// by as much as the two had drifted apart.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "lockprof/agent/record/clock.h"
#include "lockprof/primitives/condvar.h"
#include "lockprof/primitives/mutex.h"

#if defined(__x86_64__)
#include <x86intrin.h>

namespace {

namespace clock_internal = lockprof::agent::clock_internal;

// Makes MonotonicNanos() run `factor` times as fast as CLOCK_MONOTONIC from
// now on, as a calibration error or a slew of CLOCK_MONOTONIC would (by far
// less); puts the calibration back when it goes. No other thread may run
// lockprof code meanwhile.
class FastProfileClock {
 public:
  explicit FastProfileClock(double factor)
      : mult_(clock_internal::g_tsc_mult.load()),
        base_ns_(clock_internal::g_base_ns),
        base_tsc_(clock_internal::g_base_tsc) {
    uint64_t mult = mult_;
    if (mult == 0) {  // The TSC is not in use here: measure its rate.
      const int64_t ns0 = clock_internal::KernelMonotonicNanos();
      const uint64_t tsc0 = __rdtsc();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const int64_t ns1 = clock_internal::KernelMonotonicNanos();
      const uint64_t tsc1 = __rdtsc();
      mult = uint64_t((__int128(ns1 - ns0) << 32) / __int128(tsc1 - tsc0));
    }
    clock_internal::g_base_ns = clock_internal::KernelMonotonicNanos();
    clock_internal::g_base_tsc = __rdtsc();
    clock_internal::g_tsc_mult.store(uint64_t(double(mult) * factor));
  }
  ~FastProfileClock() {
    clock_internal::g_tsc_mult.store(0);
    clock_internal::g_base_ns = base_ns_;
    clock_internal::g_base_tsc = base_tsc_;
    clock_internal::g_tsc_mult.store(mult_);
  }

 private:
  const uint64_t mult_;
  const int64_t base_ns_;
  const uint64_t base_tsc_;
};

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A CondVar, with the profiles' clock 25% fast.
class CondVarClockTest : public ::testing::Test {
 protected:
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  FastProfileClock fast{1.25};
};

// The predicate is still false when the waiter is notified at 85% of its
// time by steady_clock, which the profiles' clock (25% fast) counts as past
// the deadline: the waiter must sleep the rest of its time and return
// false only then (it returned false at once).
TEST_F(CondVarClockTest, WaitForWithAPredicateWaitsItsWholeTimeOnSteadyClock) {
  std::atomic<bool> waiting{false};
  steady_clock::duration waited{};
  bool result = true;
  std::thread waiter([&] {
    std::unique_lock<lockprof::Mutex> l(mu);
    waiting = true;
    const auto start = steady_clock::now();
    result = cv.wait_for(l, milliseconds(400), [] { return false; });
    waited = steady_clock::now() - start;
  });
  while (!waiting) std::this_thread::yield();
  std::this_thread::sleep_for(milliseconds(340));
  cv.notify_all();
  waiter.join();
  EXPECT_FALSE(result);
  EXPECT_GE(waited, milliseconds(400));
}

// Without a predicate: a timeout is reported only once steady_clock says
// the time has passed, however fast the profiles' clock runs (the futex's
// own timeout is steady_clock's, so this one held before too).
TEST_F(CondVarClockTest, WaitForTimesOutOnSteadyClock) {
  std::unique_lock<lockprof::Mutex> l(mu);
  const auto start = steady_clock::now();
  EXPECT_EQ(cv.wait_for(l, milliseconds(200)), std::cv_status::timeout);
  EXPECT_GE(steady_clock::now() - start, milliseconds(200));
}

}  // namespace

#endif  // defined(__x86_64__)
