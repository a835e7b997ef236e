#include "lockprof/agent/pprof/profile_builder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lockprof/agent/tables/delta.h"
#include "lockprof/agent/tables/profile_tables.h"
#include "test_util.h"

namespace lockprof::agent {
namespace {

using ::lockprof::testing::ParseProfile;
using ::lockprof::testing::ScopedRates;
using ::lockprof::testing::SumValuesWithLabel;

// A stack no real event has (a new one each call, so that the test may be
// repeated), under a lock name no other test uses: the values recorded at it
// are the ground truth of every build below.
StackTrace FreshStack() {
  static uintptr_t next = 0x7e570;
  StackTrace stack;
  stack.depth = 2;
  stack.pcs[0] = next++;
  stack.pcs[1] = 0x7e56f;
  return stack;
}

TEST(ProfileBuilderTest, EachProfileHasItsOwnRate) {
  {
    const ScopedRates rates(7, 5000, 3);
    EXPECT_EQ(SamplingRate(ProfileId::kMutex), 7);
    EXPECT_EQ(SamplingRate(ProfileId::kCas), 7);  // CAS shares the mutex fraction.
    EXPECT_EQ(SamplingRate(ProfileId::kBlock), 5000);
    EXPECT_EQ(SamplingRate(ProfileId::kHold), 3);
    EXPECT_EQ(ProfileInfoFor(ProfileId::kMutex).Period(), 7);
    EXPECT_EQ(ProfileInfoFor(ProfileId::kCas).Period(), 7);
    EXPECT_EQ(ProfileInfoFor(ProfileId::kHold).Period(), 3);
    EXPECT_EQ(ProfileInfoFor(ProfileId::kBlock).Period(), 1);  // Weighted per event.
    for (const ProfileInfo& info : kProfiles) EXPECT_TRUE(info.SamplerEnabled()) << info.name;
  }
  {
    const ScopedRates rates(0, 5000, 0);
    EXPECT_FALSE(ProfileInfoFor(ProfileId::kMutex).SamplerEnabled());
    EXPECT_FALSE(ProfileInfoFor(ProfileId::kCas).SamplerEnabled());
    EXPECT_FALSE(ProfileInfoFor(ProfileId::kHold).SamplerEnabled());
    EXPECT_TRUE(ProfileInfoFor(ProfileId::kBlock).SamplerEnabled());
  }
}

TEST(ProfileBuilderTest, BuildsWindowsDeltasTextAndErrors) {
  const ProfileInfo& info = ProfileInfoFor(ProfileId::kCas);
  // Before the window: in the cumulative profile, in no delta.
  ProfileTable(info.id).Add(FreshStack(), EventTags{"builder.test"}, nullptr, 5, 1000);
  std::vector<SlotValues> start;
  ProfileTable(info.id).Snapshot(&start);
  const int64_t samples_before = CountSamples(info);
  const StackTrace stack = FreshStack();
  ProfileTable(info.id).Add(stack, EventTags{"builder.test"}, nullptr, 3, 300);
  ProfileTable(info.id).Add(stack, EventTags{"builder.test"}, nullptr, 1, 50);

  // A window: the table now minus `start`, with the given time and duration.
  BuildOptions window;
  window.since = &start;
  window.time_nanos = 1234567;
  window.duration_nanos = 890;
  absl::StatusOr<std::string> built = BuildProfile(info, window);
  ASSERT_TRUE(built.ok()) << built.status();
  perftools::profiles::Profile p = ParseProfile(*built);
  EXPECT_EQ(SumValuesWithLabel(p, 0, "lock", "builder.test"), 4);
  EXPECT_EQ(SumValuesWithLabel(p, 1, "lock", "builder.test"), 350);
  EXPECT_EQ(p.time_nanos(), 1234567);
  EXPECT_EQ(p.duration_nanos(), 890);

  // Given deltas, as they are.
  std::vector<SlotValues> now;
  ProfileTable(info.id).Snapshot(&now);
  std::vector<SlotValues> delta = Subtract(now, start);
  for (SlotValues& s : delta) {
    s.values[0] *= 2;
    s.values[1] *= 2;
  }
  BuildOptions given;
  given.delta = &delta;
  built = BuildProfile(info, given);
  ASSERT_TRUE(built.ok()) << built.status();
  p = ParseProfile(*built);
  EXPECT_EQ(SumValuesWithLabel(p, 1, "lock", "builder.test"), 700);
  EXPECT_EQ(p.duration_nanos(), 0);
  EXPECT_GT(p.time_nanos(), 0);  // Now.

  // The cumulative profile holds at least what was added here.
  built = BuildProfile(info);
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_GE(SumValuesWithLabel(ParseProfile(*built), 1, "lock", "builder.test"), 1350);

  // One new key: one more sample.
  EXPECT_EQ(CountSamples(info), samples_before + 1);

  BuildOptions text;
  text.debug = 1;
  built = BuildProfile(info, text);
  ASSERT_TRUE(built.ok()) << built.status();
  // The header go tool pprof reads as the legacy contention format (it
  // knows no "--- cas:").
  EXPECT_EQ(built->rfind("--- contention:\n", 0), 0u) << *built;

  BuildOptions bad;
  bad.debug = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(BuildProfile(info, bad).status()));
}

}  // namespace
}  // namespace lockprof::agent
