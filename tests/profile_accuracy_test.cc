// Ground truth for the mutex and block profiles: workloads whose true wait
// times are known by construction (and measured by the test around every
// lock call), compared with what the profiles report.
#include <gtest/gtest.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::ParseProfile;
using lockprof::testing::SumValues;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SpinFor(int64_t ns) {
  int64_t end = Now() + ns;
  while (Now() < end) {
  }
}

perftools::profiles::Profile Fetch(const char* name) {
  std::ostringstream out;
  EXPECT_TRUE(lockprof::WriteProfile(name, 0, out).ok());
  return ParseProfile(out.str());
}

// Sets every rate for the life of the object, restoring the old ones.
class Rates {
 public:
  Rates(int fraction, int64_t block_ns)
      : fraction_(lockprof::SetMutexProfileFraction(fraction)),
        block_(lockprof::BlockProfileRate()) {
    lockprof::SetBlockProfileRate(block_ns);
  }
  ~Rates() {
    lockprof::SetMutexProfileFraction(fraction_);
    lockprof::SetBlockProfileRate(block_);
  }

 private:
  int fraction_;
  int64_t block_;
};

// The holder's critical section: the mutex profile must charge it.
ABSL_ATTRIBUTE_NOINLINE void GroundTruthHolderSection(lockprof::Mutex& mu, int64_t hold_ns,
                                                      std::atomic<int>& ready, int waiters,
                                                      int64_t* unlock_at) {
  mu.lock();
  ready.store(-1);  // Tell waiters to start waiting.
  SpinFor(hold_ns / 10);
  std::this_thread::sleep_for(std::chrono::nanoseconds(hold_ns));
  *unlock_at = Now();
  mu.unlock();
}

// A waiter's acquisition: the block profile must charge it.
ABSL_ATTRIBUTE_NOINLINE int64_t GroundTruthWaiterLock(lockprof::Mutex& mu, int64_t* start) {
  *start = Now();
  mu.lock();
  int64_t acquired = Now();
  mu.unlock();
  return acquired;
}

// A holder holds for 30 ms while 3 threads wait, 8 times: the holder's
// unlocks owe every waiter's wait up to the unlock; each waiter owes its
// whole wait in the block profile.
TEST(ProfileAccuracyTest, ExactAtFractionOneAndRateOne) {
  Rates rates(1, 1);
  auto before_mutex = Fetch("mutex");
  auto before_block = Fetch("block");
  const int64_t mutex_before = SumValues(before_mutex, 1, "GroundTruthHolderSection");
  const int64_t block_before = SumValues(before_block, 1, "GroundTruthWaiterLock");

  lockprof::Mutex mu{"ground.truth"};
  constexpr int kRounds = 8, kWaiters = 3;
  constexpr int64_t kHoldNs = 30'000'000;
  int64_t mutex_truth = 0, block_truth = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> ready{0};
    int64_t unlock_at = 0;
    std::vector<int64_t> starts(kWaiters), acquired(kWaiters);
    std::thread holder([&] { GroundTruthHolderSection(mu, kHoldNs, ready, kWaiters, &unlock_at); });
    std::vector<std::thread> waiters;
    for (int w = 0; w < kWaiters; ++w) {
      waiters.emplace_back([&, w] {
        while (ready.load() != -1) std::this_thread::yield();
        acquired[w] = GroundTruthWaiterLock(mu, &starts[w]);
      });
    }
    holder.join();
    for (auto& t : waiters) t.join();
    for (int w = 0; w < kWaiters; ++w) {
      mutex_truth += std::max<int64_t>(0, unlock_at - starts[w]);
      block_truth += acquired[w] - starts[w];
    }
  }
  const int64_t mutex_got = SumValues(Fetch("mutex"), 1, "GroundTruthHolderSection") - mutex_before;
  const int64_t block_got = SumValues(Fetch("block"), 1, "GroundTruthWaiterLock") - block_before;
  // Every waiter waits ~the whole hold: ~3 * 30 ms per round.
  EXPECT_GT(mutex_truth, kRounds * kWaiters * kHoldNs * 9 / 10);
  EXPECT_NEAR(double(mutex_got), double(mutex_truth), 0.05 * double(mutex_truth));
  EXPECT_NEAR(double(block_got), double(block_truth), 0.05 * double(block_truth));
}

// Many short contention events at fraction 10 (block rate 1 ms for waits of
// a few hundred microseconds). Each round's true charge lies between two
// measured bounds: from when the waiter called lock() (an upper bound: it
// may have been preempted before it started waiting, which on loaded or
// sanitized builds is common) and from when the holder saw it asleep on the
// futex (a lower bound). The scaled totals must land within statistical
// bounds of that bracket: a missing scaling (x0.1) or a double scaling (x10)
// falls far outside.
TEST(ProfileAccuracyTest, SampledTotalsAreUnbiased) {
  constexpr int kFraction = 10;
  constexpr int64_t kBlockRate = 1'000'000;
  Rates rates(kFraction, kBlockRate);
  auto before_mutex = Fetch("mutex");
  auto before_block = Fetch("block");
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
    waiter_tid = pid_t(syscall(SYS_gettid));
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
    asleep[size_t(r)] = Now();
    SpinFor(kHoldNs);
    unlocks[size_t(r)] = Now();
    mu.unlock();
    while (done.load() != r + 1) {
    }
  }
  waiter.join();
  int64_t mutex_lo = 0, mutex_hi = 0, block_lo = 0, block_hi = 0;
  for (size_t r = 0; r < size_t(kRounds); ++r) {
    mutex_lo += unlocks[r] - asleep[r];
    mutex_hi += unlocks[r] - starts[r];
    block_lo += acquired[r] - asleep[r];
    block_hi += acquired[r] - starts[r];
  }
  // The holder's section here is this test body (inlined lock/unlock).
  const int64_t mutex_got = SumValues(Fetch("mutex"), 1, "SampledTotalsAreUnbiased") - mutex_before;
  const int64_t block_got = SumValues(Fetch("block"), 1, "GroundTruthWaiterLock") - block_before;
  std::printf(
      "mutex: got %.1f ms, truth in [%.1f, %.1f] ms; block: got %.1f ms, truth in "
      "[%.1f, %.1f] ms\n",
      mutex_got / 1e6, mutex_lo / 1e6, mutex_hi / 1e6, block_got / 1e6, block_lo / 1e6,
      block_hi / 1e6);
  // ~200 sampled events: a relative standard deviation of about 7%; 35% is
  // five of them.
  EXPECT_GE(double(mutex_got), 0.65 * double(mutex_lo));
  EXPECT_LE(double(mutex_got), 1.35 * double(mutex_hi));
  EXPECT_GE(double(block_got), 0.65 * double(block_lo));
  EXPECT_LE(double(block_got), 1.35 * double(block_hi));
}

}  // namespace
