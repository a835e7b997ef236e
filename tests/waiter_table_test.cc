// WaiterTable: each release is charged exactly the waiting done during its
// critical section, every nanosecond of waiting is charged once however the
// settles fall, a full bucket never hides a sleeper from its lock, and a
// fork()ed child forgets the parent's waiters.
#include "lockprof/primitives/internal/waiter_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "lockprof/agent/metrics.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/primitives/mutex.h"
#include "lockprof/primitives/shared_mutex.h"

namespace {

using lockprof::internal::WaiterTable;

// Distinct lock addresses that share one bucket.
std::vector<const void*> AddressesInOneBucket(int n) {
  static char memory[1 << 16];
  std::vector<const void*> found;
  const int bucket = WaiterTable::BucketIndex(memory);
  for (size_t off = 0; off < sizeof memory && int(found.size()) < n; off += 8) {
    if (WaiterTable::BucketIndex(memory + off) == bucket) found.push_back(memory + off);
  }
  return found;
}

TEST(WaiterTableTest, SettleChargesEachWaiterSinceTheLaterOfItsStartAndTheLastSettle) {
  auto table = std::make_unique<WaiterTable>();
  int lock;
  ASSERT_TRUE(table->Enter(&lock, 0, 100));
  ASSERT_TRUE(table->Enter(&lock, 0, 150));
  ASSERT_TRUE(table->Enter(&lock, 1, 120));
  int64_t first[2] = {0, 0};
  table->SettleAt(&lock, 200, first);
  EXPECT_EQ(first[0], 100 + 50);
  EXPECT_EQ(first[1], 80);
  // The next release is charged only what came after the first.
  int64_t second[2] = {0, 0};
  table->SettleAt(&lock, 260, second);
  EXPECT_EQ(second[0], 2 * 60);
  EXPECT_EQ(second[1], 60);
  // Another lock's release is charged nothing of it.
  int other;
  int64_t none[2] = {0, 0};
  table->SettleAt(&other, 300, none);
  EXPECT_EQ(none[0] + none[1], 0);
}

// A release that settles twice (SharedMutex's writer settles again when its
// releasing update fails because a reader queued meanwhile) must be charged
// the sum: the same as one settle at the later time. A table that assigned
// instead of adding charged 180 here and lost the first settle's 230.
TEST(WaiterTableTest, SettlingTwiceInOneReleaseChargesTheSum) {
  auto table = std::make_unique<WaiterTable>();
  int once, twice;
  for (const void* l : {static_cast<const void*>(&once), static_cast<const void*>(&twice)}) {
    table->Enter(l, 0, 100);
    table->Enter(l, 0, 150);
    table->Enter(l, 1, 120);
  }
  int64_t one[2] = {0, 0};
  table->SettleAt(&once, 260, one);
  int64_t two[2] = {0, 0};
  table->SettleAt(&twice, 200, two);
  table->SettleAt(&twice, 260, two);
  EXPECT_EQ(two[0], one[0]);
  EXPECT_EQ(two[1], one[1]);
  EXPECT_EQ(two[0] + two[1], 160 + 110 + 140);
}

// A waiter that enters with a start before the last settle (it read the
// clock, then a release settled, then it entered) and one that leaves after
// a settle are both counted from that settle: the entry stays balanced and
// nothing is charged twice. The last to leave is told so, and the entry is
// gone: the next release finds nothing to charge.
TEST(WaiterTableTest, EnterAndLeaveAroundASettleStayBalanced) {
  auto table = std::make_unique<WaiterTable>();
  int lock;
  table->Enter(&lock, 0, 100);
  int64_t charged[2] = {0, 0};
  table->SettleAt(&lock, 200, charged);
  EXPECT_EQ(charged[0], 100);
  table->Enter(&lock, 0, 150);  // Started before the settle: counted from 200.
  bool last = false;
  table->Leave(&lock, 0, 100, true, [&] { last = true; });
  EXPECT_FALSE(last);
  int64_t next[2] = {0, 0};
  table->SettleAt(&lock, 300, next);
  EXPECT_EQ(next[0], 100);  // Only the second waiter, 200..300.
  table->Leave(&lock, 0, 150, true, [&] { last = true; });
  EXPECT_TRUE(last);
  int64_t empty[2] = {0, 0};
  table->SettleAt(&lock, 400, empty);
  EXPECT_EQ(empty[0], 0);
}

// Enter and Leave tell each waiter the span the mutex profile charged for
// it (its block event spans the same): from its start, or from a settle
// that fell before it registered, to the last settle before it left. Their
// sum is what the releases were charged, to the nanosecond.
TEST(WaiterTableTest, EachWaiterIsToldTheSpanItWasChargedFor) {
  auto table = std::make_unique<WaiterTable>();
  int lock;
  int64_t from_a = -1, from_b = -1, from_c = -1;
  ASSERT_TRUE(table->Enter(&lock, 0, 100, nullptr, &from_a));
  EXPECT_EQ(from_a, 100);
  int64_t charged[2] = {0, 0};
  table->SettleAt(&lock, 200, charged);
  ASSERT_TRUE(table->Enter(&lock, 0, 150, nullptr, &from_b));  // Read its clock before 200.
  EXPECT_EQ(from_b, 200);
  ASSERT_TRUE(table->Enter(&lock, 1, 250, nullptr, &from_c));  // Nothing settled it yet.
  const int64_t until_a = table->Leave(&lock, 0, 100, true);
  EXPECT_EQ(until_a, 200);
  table->SettleAt(&lock, 300, charged);
  const int64_t until_b = table->Leave(&lock, 0, 150, true);
  EXPECT_EQ(until_b, 300);
  const int64_t until_c = table->Leave(&lock, 1, 250, true);
  EXPECT_EQ(until_c, 300);
  EXPECT_EQ(charged[0] + charged[1], (until_a - from_a) + (until_b - from_b) + (until_c - from_c));
  // A waiter that was not registered was charged nothing: Leave says so.
  EXPECT_EQ(table->Leave(&lock, 0, 400, false), -1);
}

// Clocks read on two CPUs may disagree: a waiter's start, read on one, may
// be later than the next settle's time, read on another; two settles may
// read theirs out of order. No release is charged less than nothing (its
// caller would drop the charge, and the next release get it), and what the
// releases are charged is what the waiters are told they waited.
TEST(WaiterTableTest, ClocksThatDisagreeNeverChargeLessThanNothing) {
  auto table = std::make_unique<WaiterTable>();
  int lock;
  int64_t from_a = -1, from_b = -1;
  ASSERT_TRUE(table->Enter(&lock, 0, 1000, nullptr, &from_a));
  int64_t behind[2] = {0, 0}, after[2] = {0, 0};
  table->SettleAt(&lock, 900, behind);  // This CPU's clock is behind the waiter's.
  EXPECT_EQ(behind[0], 0);
  table->SettleAt(&lock, 5000, after);
  EXPECT_EQ(after[0], 4000);
  const int64_t until_a = table->Leave(&lock, 0, 1000, true);
  EXPECT_EQ(behind[0] + after[0], until_a - from_a);

  ASSERT_TRUE(table->Enter(&lock, 0, 6000, nullptr, &from_b));
  int64_t first[2] = {0, 0}, earlier[2] = {0, 0}, last[2] = {0, 0};
  table->SettleAt(&lock, 7000, first);
  table->SettleAt(&lock, 6500, earlier);  // Read before the one above, on another CPU.
  table->SettleAt(&lock, 8000, last);
  EXPECT_EQ(first[0], 1000);
  EXPECT_EQ(earlier[0], 0);
  EXPECT_EQ(last[0], 1000);
  const int64_t until_b = table->Leave(&lock, 0, 6000, true);
  EXPECT_EQ(first[0] + earlier[0] + last[0], until_b - from_b);
}

// A waiter that finds its bucket full is not registered and counted as
// dropped. Until it leaves, no registered waiter of that bucket is told it
// was the last: a lock that cleared its "sleepers" mark then would never
// wake the unregistered sleeper.
TEST(WaiterTableTest, AFullBucketDropsTheWaiterButNeverHidesIt) {
  auto table = std::make_unique<WaiterTable>();
  const std::vector<const void*> locks = AddressesInOneBucket(WaiterTable::kPerBucket + 1);
  ASSERT_EQ(int(locks.size()), WaiterTable::kPerBucket + 1);
  for (int i = 0; i < WaiterTable::kPerBucket; ++i) ASSERT_TRUE(table->Enter(locks[i], 0, 10));
  const void* extra = locks[WaiterTable::kPerBucket];
  const uint64_t uncharged_before = lockprof::agent::UnchargedWaits();
  EXPECT_FALSE(table->Enter(extra, 0, 10));
  EXPECT_EQ(table->Dropped(), 1);
  // And in /metrics, process-wide.
  EXPECT_EQ(lockprof::agent::UnchargedWaits(), uncharged_before + 1);
  std::string metrics;
  lockprof::WriteMetrics(&metrics);
  EXPECT_NE(metrics.find("\nlockprof_lock_waits_uncharged_total " +
                         std::to_string(uncharged_before + 1) + "\n"),
            std::string::npos)
      << metrics;
  int64_t charged[2] = {0, 0};
  table->SettleAt(extra, 50, charged);
  EXPECT_EQ(charged[0], 0);  // Its wait is missing from the mutex profile.

  bool last = false;
  table->Leave(locks[0], 0, 10, true, [&] { last = true; });
  EXPECT_FALSE(last) << "the last registered waiter of a bucket with a hidden sleeper";
  table->Leave(extra, 0, 10, false, [&] { last = true; });
  EXPECT_FALSE(last);  // An unregistered waiter is never told.
  // The freed entries take new waiters, and the last is told again.
  ASSERT_TRUE(table->Enter(extra, 0, 60));
  table->Leave(extra, 0, 60, true, [&] { last = true; });
  EXPECT_TRUE(last);
}

// In a fork()ed child the parent's waiters do not exist: they are
// forgotten, and the readers a lock also counted in its own word are taken
// out of it (a SharedMutex's queued readers would otherwise hold it forever).
TEST(WaiterTableTest, ForgetInChildTakesReadersOutOfTheirLockWord) {
  auto table = std::make_unique<WaiterTable>();
  std::atomic<uint64_t> word{(uint64_t{7} << 32) | 5};  // 5 readers, 2 of them asleep.
  ASSERT_TRUE(table->Enter(&word, 0, 10, &word));
  ASSERT_TRUE(table->Enter(&word, 0, 20, &word));
  ASSERT_TRUE(table->Enter(&word, 1, 30, &word));  // A writer: not in the count.
  int plain;
  ASSERT_TRUE(table->Enter(&plain, 0, 10));
  table->ForgetInChild();
  EXPECT_EQ(word.load(), (uint64_t{7} << 32) | 3);
  int64_t charged[2] = {0, 0};
  table->SettleAt(&word, 100, charged);
  table->SettleAt(&plain, 100, charged);
  EXPECT_EQ(charged[0] + charged[1], 0);
}

// The point of keeping waiters outside the locks.
TEST(WaiterTableTest, LocksAreNoLargerThanTheStandardOnes) {
  EXPECT_LE(sizeof(lockprof::Mutex), sizeof(std::mutex));
  EXPECT_LE(sizeof(lockprof::SharedMutex), sizeof(std::shared_mutex));
  EXPECT_EQ(sizeof(lockprof::Mutex), 24u);
  EXPECT_EQ(sizeof(lockprof::SharedMutex), 40u);
}

}  // namespace
