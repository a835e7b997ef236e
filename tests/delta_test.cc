#include "lockprof/agent/tables/delta.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <thread>

#include "lockprof/agent/record/record.h"
#include "lockprof/agent/tables/stack_table.h"
#include "lockprof/agent/tables/thread_cells.h"

namespace lockprof::agent {
namespace {

StackTrace StackOf(uintptr_t pc) {
  StackTrace s;
  s.depth = 1;
  s.pcs[0] = pc;
  return s;
}

SlotValues At(size_t slot, int64_t a, int64_t b) {
  return SlotValues{slot, nullptr, false, {a, b}};
}

TEST(DeltaTest, SubtractIsPerSlotAndDropsZeros) {
  std::vector<SlotValues> earlier = {At(0, 5, 50), At(3, 1, 10)};
  std::vector<SlotValues> later = {At(0, 5, 50), At(3, 4, 70), At(7, 2, 20)};
  auto d = Subtract(later, earlier);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].slot, 3u);
  EXPECT_EQ(d[0].values[0], 3);
  EXPECT_EQ(d[0].values[1], 60);
  EXPECT_EQ(d[1].slot, 7u);
  EXPECT_EQ(d[1].values[1], 20);
}

TEST(DeltaTest, TrackerReportsEachIncrementOnce) {
  DeltaTracker tracker(ProfileId::kCas);
  tracker.Next();  // Whatever other tests recorded.
  StackTrace stack;
  stack.depth = 2;
  stack.pcs[0] = 0x1234;
  stack.pcs[1] = 0x5678;
  ProfileTable(ProfileId::kCas).Add(stack, EventTags{"delta.test"}, nullptr, 2, 200);
  auto first = tracker.Next();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].values[0], 2);
  EXPECT_EQ(first[0].values[1], 200);
  EXPECT_TRUE(tracker.Next().empty());
  ProfileTable(ProfileId::kCas).Add(stack, EventTags{"delta.test"}, nullptr, 1, 50);
  auto second = tracker.Next();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].values[0], 1);
  EXPECT_EQ(second[0].values[1], 50);
}

// A key's cumulative value passes 2^63 (a thousand threads waiting at one
// site for good get there in about 107 days): it wraps instead of
// overflowing (undefined behaviour, which the UBSan build stops at), and
// deltas across the wrap stay exact; before, the tracker reported nothing
// for that key ever again.
TEST(DeltaTest, DeltasStayExactAcrossAWrapOfTheCumulativeValue) {
  const StackTrace stack = StackOf(0x7777);
  StackTable& table = ProfileTable(ProfileId::kCas);
  DeltaTracker tracker(ProfileId::kCas);
  tracker.Next();  // Whatever other tests recorded.
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  table.Add(stack, EventTags{"delta.wrap"}, nullptr, 1, kMax - 10);
  auto first = tracker.Next();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].values[1], kMax - 10);
  for (int i = 0; i < 3; ++i) {
    table.Add(stack, EventTags{"delta.wrap"}, nullptr, 1, 100);
    auto next = tracker.Next();
    ASSERT_EQ(next.size(), 1u) << "after " << i << " adds past the top";
    EXPECT_EQ(next[0].values[0], 1);
    EXPECT_EQ(next[0].values[1], 100);
  }
}

TEST(DeltaTest, NeverNegativeWhenASnapshotMissesValuesInAMove) {
  EXPECT_TRUE(Subtract({At(0, 3, 30)}, {At(0, 5, 50)}).empty());
  StackTable& table = ProfileTable(ProfileId::kCas);
  auto stack = StackOf;
  // A thread leaves its values in its cells and exits; the next thread
  // takes its block over, and when it rebinds the cell (64 events with no
  // cell) moves them into their slot, stopped halfway for 300 ms, as a
  // preempted thread would be. Readers wait 10 ms for a move, then read
  // without its values.
  std::thread([&] {
    RecorderScope scope;
    table.Add(stack(0xde17a000), EventTags{"delta.victim"}, nullptr, 1000, 1'000'000'000);
    for (uintptr_t k = 1; k < 8; ++k) {
      for (int n = 0; n < 10; ++n) {
        table.Add(stack(0xde17a000 + 16 * k), EventTags{"delta.other"}, nullptr, 1, 1);
      }
    }
  }).join();
  DeltaTracker tracker(ProfileId::kCas);
  int64_t reported_delay = 0;
  auto next = [&] {
    for (const SlotValues& s : tracker.Next()) {
      EXPECT_GE(s.values[0], 0) << "slot " << s.slot;
      EXPECT_GE(s.values[1], 0) << "slot " << s.slot;
      reported_delay += s.values[1];
    }
  };
  next();
  reported_delay = 0;  // Counted from here, as the table's gain below.
  std::vector<SlotValues> start;
  table.Snapshot(&start);
  static std::atomic<bool> in_move{false};
  in_move = false;
  SetCellMoveHookForTesting(+[] {
    if (!in_move.exchange(true)) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  });
  std::thread mover([&] {
    RecorderScope scope;
    for (int n = 0; n < 64; ++n)
      table.Add(stack(0xde17b000), EventTags{"delta.new"}, nullptr, 1, 1);
  });
  while (!in_move) std::this_thread::yield();
  next();  // Misses the victim's values.
  std::vector<SlotValues> during;
  table.Snapshot(&during);
  for (const SlotValues& s : Subtract(during, start)) {
    EXPECT_GE(s.values[0], 0) << "slot " << s.slot;
    EXPECT_GE(s.values[1], 0) << "slot " << s.slot;
  }
  mover.join();
  SetCellMoveHookForTesting(nullptr);
  next();
  // Every value once: the deltas after the first read add up to what the
  // table gained since (not to its whole total: earlier tests in this
  // process left keys in it, one of them past 2^63); the victim's values,
  // read before the move, come back in none of them.
  std::vector<SlotValues> end;
  table.Snapshot(&end);
  int64_t total_delay = 0;
  for (const SlotValues& s : Subtract(end, start)) total_delay += s.values[1];
  EXPECT_EQ(reported_delay, total_delay);
}

}  // namespace
}  // namespace lockprof::agent
