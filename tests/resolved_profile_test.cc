// Resolve and CountResolvedSamples on hand-made slots: duplicate slots of
// one key (two threads inserting the same new key at once leave two) are
// one sample, all-zero slots none, the overflow slot one; and the
// /debug/pprof/ index's count is the number of samples the profile serves.
#include "lockprof/agent/pprof/resolved_profile.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {
namespace {

// A key with a two-frame stack at addresses no code has (they resolve to
// no symbol), on lock `name`.
SampleKey MakeKey(uintptr_t leaf, const char* name) {
  SampleKey key;
  std::memset(&key, 0, sizeof(key));
  key.depth = 2;
  key.pcs[0] = leaf;
  key.pcs[1] = 0x7e5700;
  key.mode = LockMode::kNone;
  key.shard = -1;
  std::strncpy(key.lock_name, name, sizeof(key.lock_name) - 1);
  key.lock = key.lock_name;
  key.lock_id = name;
  return key;
}

SlotValues Slot(size_t slot, const SampleKey* key, int64_t v0, int64_t v1) {
  return SlotValues{slot, key, false, {v0, v1}};
}

const ProfileInfo& Mutex() { return ProfileInfoFor(ProfileId::kMutex); }

TEST(ResolvedProfileTest, DuplicateSlotsOfOneKeyAreOneSample) {
  // Two slots whose keys are equal but distinct objects, as a racing insert
  // leaves them, and a third key on the same stack but another lock.
  static const char kName[] = "resolved.dup";
  static const char kOther[] = "resolved.other";
  const SampleKey first = MakeKey(0x7e5710, kName);
  const SampleKey second = MakeKey(0x7e5710, kName);
  const SampleKey other = MakeKey(0x7e5710, kOther);
  const std::vector<SlotValues> slots = {Slot(0, &first, 2, 200), Slot(1, &other, 1, 50),
                                         Slot(2, &second, 3, 300)};

  EXPECT_EQ(CountResolvedSamples(slots), 2);
  const ResolvedProfile p = Resolve(Mutex(), slots, 1, 0);
  ASSERT_EQ(p.samples.size(), 2u);
  // Sorted by delay, largest first: the merged key, then the other lock's.
  EXPECT_EQ(p.samples[0].values[0], 5);
  EXPECT_EQ(p.samples[0].values[1], 500);
  EXPECT_EQ(p.samples[1].values[0], 1);
  EXPECT_EQ(p.samples[1].values[1], 50);
}

TEST(ResolvedProfileTest, ZeroSlotsAreDroppedAndOverflowIsOneSample) {
  static const char kName[] = "resolved.zero";
  const SampleKey live = MakeKey(0x7e5720, kName);
  const SampleKey idle = MakeKey(0x7e5730, kName);
  const SampleKey idle_twin = MakeKey(0x7e5730, kName);
  std::vector<SlotValues> slots = {Slot(0, &live, 1, 10), Slot(1, &idle, 0, 0),
                                   Slot(2, &idle_twin, 0, 0)};
  EXPECT_EQ(CountResolvedSamples(slots), 1);
  EXPECT_EQ(Resolve(Mutex(), slots, 1, 0).samples.size(), 1u);

  // Two overflow slots (a delta can carry one from each side) are one
  // sample; an all-zero overflow is none.
  slots.push_back(SlotValues{3, nullptr, true, {0, 0}});
  EXPECT_EQ(CountResolvedSamples(slots), 1);
  EXPECT_EQ(Resolve(Mutex(), slots, 1, 0).samples.size(), 1u);
  slots.push_back(SlotValues{4, nullptr, true, {4, 40}});
  slots.push_back(SlotValues{5, nullptr, true, {1, 10}});
  EXPECT_EQ(CountResolvedSamples(slots), 2);
  const ResolvedProfile p = Resolve(Mutex(), slots, 1, 0);
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.samples[0].values[0], 5);  // The overflow sample, 50 ns.
  EXPECT_EQ(p.samples[0].values[1], 50);
}

TEST(ResolvedProfileTest, NothingIsNoSample) {
  EXPECT_EQ(CountResolvedSamples({}), 0);
  EXPECT_TRUE(Resolve(Mutex(), {}, 1, 0).samples.empty());
}

}  // namespace
}  // namespace lockprof::agent
