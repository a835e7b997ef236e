#include "lockprof/agent/tables/delta.h"

#include <gtest/gtest.h>

#include "lockprof/agent/tables/stack_table.h"

namespace lockprof::agent {
namespace {

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

}  // namespace
}  // namespace lockprof::agent
