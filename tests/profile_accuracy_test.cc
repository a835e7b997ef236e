// Ground truth for the mutex and block profiles: workloads whose true wait
// times are known by construction (and measured by the test around every
// lock call), compared with what the profiles report.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
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

// Many short contention events at fraction 10 (block rate 1 ms for ~200 us
// waits): the scaled totals must match the truth within a bound that a
// missing scaling (~-90%) or a double scaling (~+900%) would break.
TEST(ProfileAccuracyTest, SampledTotalsAreUnbiased) {
  constexpr int kFraction = 10;
  constexpr int64_t kBlockRate = 1'000'000;
  Rates rates(kFraction, kBlockRate);
  auto before_mutex = Fetch("mutex");
  auto before_block = Fetch("block");
  const int64_t mutex_before = SumValues(before_mutex, 1, "SampledTotalsAreUnbiased");
  const int64_t block_before = SumValues(before_block, 1, "GroundTruthWaiterLock");

  lockprof::Mutex mu{"sampled.truth"};
  constexpr int kRounds = 3000;
  constexpr int64_t kHoldNs = 150'000;
  int64_t mutex_truth = 0, block_truth = 0;
  std::atomic<int> ready{0};
  std::atomic<int> done{0};
  std::vector<int64_t> starts(kRounds), acquired(kRounds), unlocks(kRounds);
  std::thread waiter([&] {
    for (int r = 0; r < kRounds; ++r) {
      while (ready.load() != r + 1) {
      }
      acquired[size_t(r)] = GroundTruthWaiterLock(mu, &starts[size_t(r)]);
      done.store(r + 1);
    }
  });
  for (int r = 0; r < kRounds; ++r) {
    // The holder sleeps less than it spins: the waiter is surely asleep on
    // the futex by the time the holder unlocks.
    mu.lock();
    ready.store(r + 1);
    SpinFor(kHoldNs);
    unlocks[size_t(r)] = Now();
    mu.unlock();
    while (done.load() != r + 1) {
    }
  }
  waiter.join();
  for (int r = 0; r < kRounds; ++r) {
    mutex_truth += std::max<int64_t>(0, unlocks[size_t(r)] - starts[size_t(r)]);
    block_truth += acquired[size_t(r)] - starts[size_t(r)];
  }
  // The holder's section here is this test body (inlined lock/unlock).
  const int64_t mutex_got = SumValues(Fetch("mutex"), 1, "SampledTotalsAreUnbiased") - mutex_before;
  const int64_t block_got = SumValues(Fetch("block"), 1, "GroundTruthWaiterLock") - block_before;
  ASSERT_GT(mutex_truth, 0);
  EXPECT_NEAR(double(mutex_got), double(mutex_truth), 0.35 * double(mutex_truth));
  EXPECT_NEAR(double(block_got), double(block_truth), 0.35 * double(block_truth));
}

}  // namespace
