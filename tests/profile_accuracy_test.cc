// Ground truth for the mutex and block profiles: workloads whose true wait
// times are known by construction (and measured by the test around every
// lock call), compared with what the profiles report.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"
#include "wait_truth.h"

namespace {

using lockprof::testing::FetchProfile;
using lockprof::testing::NowNanos;
using lockprof::testing::ScopedRates;
using lockprof::testing::SpinFor;
using lockprof::testing::SumValues;
using lockprof::testing::WaiterTimes;
using lockprof::testing::WaitsUntilAcquired;
using lockprof::testing::WaitsUntilLetIn;

constexpr int kKeep = ScopedRates::kKeep;

// The holder's critical section: the mutex profile must charge it.
ABSL_ATTRIBUTE_NOINLINE void GroundTruthHolderSection(lockprof::Mutex& mu, int64_t hold_ns,
                                                      std::atomic<int>& ready, int waiters,
                                                      int64_t* unlock_at) {
  mu.lock();
  ready.store(-1);  // Tell waiters to start waiting.
  SpinFor(hold_ns / 10);
  std::this_thread::sleep_for(std::chrono::nanoseconds(hold_ns));
  *unlock_at = NowNanos();
  mu.unlock();
}

// A waiter's acquisition: the block profile must charge it. Returns when it
// got the lock; *released is when it let the next waiter in.
ABSL_ATTRIBUTE_NOINLINE int64_t GroundTruthWaiterLock(lockprof::Mutex& mu, int64_t* start,
                                                      int64_t* released = nullptr) {
  *start = NowNanos();
  mu.lock();
  int64_t acquired = NowNanos();
  if (released != nullptr) *released = NowNanos();
  mu.unlock();
  return acquired;
}

// A holder holds for 30 ms while 3 threads wait, 8 times: the holder's
// unlocks owe every waiter's wait up to the unlock; each waiter owes its
// wait up to the release that let it in in the block profile.
TEST(ProfileAccuracyTest, ExactAtFractionOneAndRateOne) {
  ScopedRates rates(1, 1, kKeep);
  auto before_mutex = FetchProfile("mutex");
  auto before_block = FetchProfile("block");
  const int64_t mutex_before = SumValues(before_mutex, 1, "GroundTruthHolderSection");
  const int64_t block_before = SumValues(before_block, 1, "GroundTruthWaiterLock");

  lockprof::Mutex mu{"ground.truth"};
  constexpr int kRounds = 8, kWaiters = 3;
  constexpr int64_t kHoldNs = 30'000'000;
  int64_t mutex_truth = 0, block_truth = 0, block_until_acquired = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> ready{0};
    int64_t unlock_at = 0;
    std::vector<WaiterTimes> times(kWaiters);
    std::thread holder([&] { GroundTruthHolderSection(mu, kHoldNs, ready, kWaiters, &unlock_at); });
    std::vector<std::thread> waiters;
    for (int w = 0; w < kWaiters; ++w) {
      waiters.emplace_back([&, w] {
        while (ready.load() != -1) std::this_thread::yield();
        WaiterTimes& t = times[w];
        t.acquired = GroundTruthWaiterLock(mu, &t.start, &t.released);
      });
    }
    holder.join();
    for (auto& t : waiters) t.join();
    for (const WaiterTimes& t : times) mutex_truth += std::max<int64_t>(0, unlock_at - t.start);
    block_truth += WaitsUntilLetIn(unlock_at, times, /*exclusive=*/true);
    block_until_acquired += WaitsUntilAcquired(times);
  }
  const int64_t mutex_got =
      SumValues(FetchProfile("mutex"), 1, "GroundTruthHolderSection") - mutex_before;
  const int64_t block_got =
      SumValues(FetchProfile("block"), 1, "GroundTruthWaiterLock") - block_before;
  // Every waiter waits ~the whole hold: ~3 * 30 ms per round.
  EXPECT_GT(mutex_truth, kRounds * kWaiters * kHoldNs * 9 / 10);
  EXPECT_NEAR(double(mutex_got), double(mutex_truth), 0.05 * double(mutex_truth));
  EXPECT_NEAR(double(block_got), double(block_truth), 0.05 * double(block_truth));
  EXPECT_LE(block_got, block_until_acquired);
}

// Many short contention events at fraction 10 (block rate 1 ms for waits of
// a few hundred microseconds). Each round's true charge lies between two
// measured bounds: from when the waiter called lock() (an upper bound: it
// may have been preempted before it started waiting, which on loaded or
// sanitized builds is common) and from when the holder saw it asleep on the
// futex (a lower bound). The scaled totals must land within five standard
// deviations of that bracket, derived from the sampling: an event of x ns
// kept with probability 1/f and scaled by f adds (f - 1) x^2 to the
// variance; a wait of d < R ns kept with probability d/R as R adds
// d (R - d). On a quiet machine that is about a third of the mutex total
// and a few percent of the block total: a missing scaling (x0.1) or a
// double one (x10) falls far outside. sampling_test checks the samplers'
// scaling against exactly known events, where 5 sd is a few percent.
TEST(ProfileAccuracyTest, SampledTotalsAreUnbiased) {
  constexpr int kFraction = 10;
  constexpr int64_t kBlockRate = 1'000'000;
  ScopedRates rates(kFraction, kBlockRate, kKeep);
  auto before_mutex = FetchProfile("mutex");
  auto before_block = FetchProfile("block");
  const int64_t mutex_before = SumValues(before_mutex, 1, "SampledTotalsAreUnbiased");
  const int64_t block_before = SumValues(before_block, 1, "GroundTruthWaiterLock");

  lockprof::Mutex mu{"sampled.truth"};
  constexpr int kRounds = 2000;
  constexpr int64_t kHoldNs = 300'000;
  std::atomic<int> ready{0};
  std::atomic<int> done{0};
  std::atomic<pid_t> waiter_tid{0};
  std::vector<int64_t> starts(kRounds), asleep(kRounds), acquired(kRounds), unlocks(kRounds);
  std::thread waiter([&] {
    waiter_tid = lockprof::testing::ThisThreadId();
    for (int r = 0; r < kRounds; ++r) {
      while (ready.load() != r + 1) {
      }
      acquired[size_t(r)] = GroundTruthWaiterLock(mu, &starts[size_t(r)]);
      done.store(r + 1);
    }
  });
  while (waiter_tid.load() == 0) std::this_thread::yield();
  for (int r = 0; r < kRounds; ++r) {
    mu.lock();
    ready.store(r + 1);
    // The waiter busy-waits until it calls lock(), so asleep means parked
    // on the mutex's futex.
    while (!lockprof::testing::IsAsleep(waiter_tid.load())) {
    }
    asleep[size_t(r)] = NowNanos();
    SpinFor(kHoldNs);
    unlocks[size_t(r)] = NowNanos();
    mu.unlock();
    while (done.load() != r + 1) {
    }
  }
  waiter.join();
  int64_t mutex_lo = 0, mutex_hi = 0, block_lo = 0, block_hi = 0;
  double mutex_var = 0, block_var = 0;  // From the upper bounds: the larger.
  for (size_t r = 0; r < size_t(kRounds); ++r) {
    mutex_lo += unlocks[r] - asleep[r];
    mutex_hi += unlocks[r] - starts[r];
    // A wait ends at the release that let the waiter in (waiter_table.h),
    // which falls between unlocks[r] and acquired[r].
    block_lo += unlocks[r] - asleep[r];
    block_hi += acquired[r] - starts[r];
    const double x = double(unlocks[r] - starts[r]), d = double(acquired[r] - starts[r]);
    mutex_var += (kFraction - 1) * x * x;
    if (d < kBlockRate) block_var += d * (kBlockRate - d);
  }
  const double mutex_bound = 5 * std::sqrt(mutex_var), block_bound = 5 * std::sqrt(block_var);
  // The holder's section here is this test body (inlined lock/unlock).
  const int64_t mutex_got =
      SumValues(FetchProfile("mutex"), 1, "SampledTotalsAreUnbiased") - mutex_before;
  const int64_t block_got =
      SumValues(FetchProfile("block"), 1, "GroundTruthWaiterLock") - block_before;
  std::printf(
      "mutex: got %.1f ms, truth in [%.1f, %.1f] ms, 5 sd %.1f ms; block: got %.1f ms, truth in "
      "[%.1f, %.1f] ms, 5 sd %.1f ms\n",
      mutex_got / 1e6, mutex_lo / 1e6, mutex_hi / 1e6, mutex_bound / 1e6, block_got / 1e6,
      block_lo / 1e6, block_hi / 1e6, block_bound / 1e6);
  EXPECT_GE(double(mutex_got), double(mutex_lo) - mutex_bound);
  EXPECT_LE(double(mutex_got), double(mutex_hi) + mutex_bound);
  EXPECT_GE(double(block_got), double(block_lo) - block_bound);
  EXPECT_LE(double(block_got), double(block_hi) + block_bound);
}

}  // namespace
