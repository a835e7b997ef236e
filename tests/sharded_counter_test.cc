// lockprof::ShardedCounter: exact sums under concurrent Adds, an exact
// read-and-clear, and shard collisions (and only collisions) profiled in
// /debug/pprof/cas with the counter's name.
#include "lockprof/primitives/sharded_counter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::FetchProfile;
using lockprof::testing::SamplesForLock;
using lockprof::testing::ScopedRates;
using lockprof::testing::StackFunctions;

// Retries recorded for samples labelled lock=`name`, checking that each
// such sample's leaf is `leaf`.
int64_t CasRetriesFor(const std::string& name, const std::string& leaf) {
  auto profile = FetchProfile("cas");
  int64_t sum = 0;
  for (const auto* s : SamplesForLock(profile, name)) {
    auto names = StackFunctions(profile, *s);
    EXPECT_TRUE(!names.empty() && names[0].find(leaf) != std::string::npos) << names.size();
    sum += s->value(0);
  }
  return sum;
}

ABSL_ATTRIBUTE_NOINLINE void CountRequests(lockprof::ShardedCounter& counter, int n) {
  for (int i = 0; i < n; ++i) counter.Add(1);
}

// Runs `threads` threads, each calling CountRequests(counter, n).
void RunAdders(lockprof::ShardedCounter& counter, int threads, int n) {
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back([&] { CountRequests(counter, n); });
  for (auto& w : workers) w.join();
}

TEST(ShardedCounterTest, ShardCountIsAPowerOfTwo) {
  EXPECT_EQ(lockprof::ShardedCounter(nullptr, 5).shard_count(), 8u);
  EXPECT_EQ(lockprof::ShardedCounter(nullptr, 1).shard_count(), 1u);
  // A count from a flag that defaulted to -1: clamped, not a hang.
  EXPECT_EQ(lockprof::ShardedCounter(nullptr, size_t(-1)).shard_count(),
            lockprof::ShardedCounter::kMaxShards);
  lockprof::ShardedCounter by_default{"test.default"};
  EXPECT_GE(by_default.shard_count(), 8u);
  EXPECT_EQ(by_default.shard_count() & (by_default.shard_count() - 1), 0u);
  EXPECT_STREQ(by_default.name(), "test.default");
}

TEST(ShardedCounterTest, ExactUnderConcurrentAdds) {
  for (size_t shards : {size_t{1}, size_t{2}, size_t{0}}) {
    lockprof::ShardedCounter counter{"test.exact", shards};
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t) {
      workers.emplace_back([&, t] {
        for (int i = 0; i < 100000; ++i) counter.Add(t + 1);
        counter.Add(-(t + 1));
      });
    }
    for (auto& w : workers) w.join();
    EXPECT_EQ(counter.Load(), (1 + 2 + 3 + 4) * int64_t{99999}) << shards << " shards";
  }
}

TEST(ShardedCounterTest, WrapsLikeFetchAdd) {
  lockprof::ShardedCounter counter(nullptr, 1);
  counter.Add(INT64_MAX);
  counter.Increment();
  EXPECT_EQ(counter.Load(), INT64_MIN);
}

// Reset is an exact read-and-clear: what the resets took plus what is left
// equals what was added, however they interleaved.
TEST(ShardedCounterTest, ResetLosesNothingUnderConcurrentAdds) {
  lockprof::ShardedCounter counter{"test.reset", 4};
  std::atomic<bool> done{false};
  int64_t taken = 0;
  std::thread resetter([&] {
    while (!done.load()) taken += counter.Reset();
  });
  RunAdders(counter, 3, 200000);
  done.store(true);
  resetter.join();
  EXPECT_EQ(taken + counter.Load(), 3 * int64_t{200000});
  const int64_t left = counter.Load();
  EXPECT_EQ(counter.Reset(), left);
  EXPECT_EQ(counter.Load(), 0);
}

// Threads share one shard: their collisions are retries in the cas profile,
// labelled with the counter's name, at the function that called Add.
TEST(ShardedCounterTest, SharedShardCollisionsAreProfiled) {
  ScopedRates rates(1, ScopedRates::kKeep, ScopedRates::kKeep);
  lockprof::ShardedCounter counter{"test.one_shard", 1};
  // Collisions need two threads on two CPUs between a load and a CAS; keep
  // going (bounded) until some were seen.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int64_t rounds = 0;
  while (CasRetriesFor("test.one_shard", "CountRequests") == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    RunAdders(counter, 4, 100000);
    ++rounds;
  }
  EXPECT_GT(CasRetriesFor("test.one_shard", "CountRequests"), 0);
  EXPECT_EQ(counter.Load(), rounds * 4 * 100000);
}

// With at least as many shards as threads, slots are handed out round-robin,
// so no two threads share a shard: nothing to retry, nothing recorded.
TEST(ShardedCounterTest, ThreadsOnTheirOwnShardsNeverCollide) {
  ScopedRates rates(1, ScopedRates::kKeep, ScopedRates::kKeep);
  lockprof::ShardedCounter counter{"test.many_shards", 64};
  RunAdders(counter, 4, 200000);
  EXPECT_EQ(counter.Load(), 800000);
  EXPECT_EQ(CasRetriesFor("test.many_shards", "CountRequests"), 0);
}

}  // namespace
