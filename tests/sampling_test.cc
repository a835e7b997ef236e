// The samplers' scaling against exactly known events. Each test records
// events of known size through the recorder (as the primitives do) at a
// sampling rate above 1, and compares the profile's scaled totals with the
// truth, within five standard deviations derived from the sampling: an
// event of x kept with probability 1/f and scaled by f adds (f - 1) x^2 to
// the variance of the total; a wait of d < R kept with probability d/R as
// (R/d, R) adds d (R - d) to the delay's and R/d - 1 to the count's. With
// enough events that is a few percent, so a missing scaling, a double one,
// or a scale factor off by 1.2 fails. (profile_accuracy_test and
// hold_profile_test check the same end to end, through real locks, where
// the machine's noise allows only looser bounds.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/stack_trace.h"
#include "lockprof/agent/sampling.h"
#include "test_util.h"

namespace {

using lockprof::agent::EventTags;
using lockprof::testing::FetchProfile;
using lockprof::testing::ScopedRates;
using lockprof::testing::SumValuesWithLabel;
constexpr int kKeep = ScopedRates::kKeep;

// Profile `profile`'s totals (value[0], value[1]) for lock=`lock`.
std::vector<int64_t> Totals(const std::string& profile, const std::string& lock) {
  const auto p = FetchProfile(profile);
  return {SumValuesWithLabel(p, 0, "lock", lock), SumValuesWithLabel(p, 1, "lock", lock)};
}

// Expects `got` within five standard deviations (`variance`) of `truth`,
// and that bound under `max_share` of the truth (else the test could not
// tell a 20% bias).
void ExpectWithinFiveSd(const char* what, int64_t got, double truth, double variance,
                        double max_share) {
  const double bound = 5 * std::sqrt(variance);
  std::printf("%s: got %lld, truth %.0f, 5 sd %.0f (%.1f%%)\n", what, (long long)got, truth, bound,
              100 * bound / truth);
  EXPECT_LT(bound, max_share * truth) << what;
  EXPECT_NEAR(double(got), truth, bound) << what;
}

// Events of 1 to 10.9 us at fraction 10: each kept one is scaled by 10.
TEST(SamplingTest, MutexProfileScalingIsUnbiased) {
  constexpr int kFraction = 10, kEvents = 200'000;
  ScopedRates rates(kFraction, kKeep, kKeep);
  const EventTags tags{"sampling.mutex"};
  const auto before = Totals("mutex", tags.lock);
  double delay = 0, delay_var = 0;
  for (int i = 0; i < kEvents; ++i) {
    const int64_t x = 1000 + (i % 100) * 100;
    lockprof::agent::RecordContention(x, tags, __builtin_frame_address(0));
    delay += double(x);
    delay_var += (kFraction - 1) * double(x) * double(x);
  }
  const auto after = Totals("mutex", tags.lock);
  ExpectWithinFiveSd("mutex count", after[0] - before[0], kEvents, (kFraction - 1.0) * kEvents,
                     0.05);
  ExpectWithinFiveSd("mutex delay", after[1] - before[1], delay, delay_var, 0.05);
  EXPECT_EQ((after[0] - before[0]) % kFraction, 0) << "each kept event counts kFraction";
}

// The CAS profile shares the mutex fraction: loops of 1 to 3 retries.
TEST(SamplingTest, CasProfileScalingIsUnbiased) {
  constexpr int kFraction = 10, kLoops = 200'000;
  ScopedRates rates(kFraction, kKeep, kKeep);
  const EventTags tags{"sampling.cas"};
  const auto before = Totals("cas", tags.lock);
  double retries = 0, retries_var = 0, delay = 0, delay_var = 0;
  for (int i = 0; i < kLoops; ++i) {
    const int64_t r = 1 + i % 3, x = 500 + (i % 50) * 100;
    lockprof::agent::RecordCasRetries(r, x, tags, __builtin_frame_address(0));
    retries += double(r);
    retries_var += (kFraction - 1) * double(r) * double(r);
    delay += double(x);
    delay_var += (kFraction - 1) * double(x) * double(x);
  }
  const auto after = Totals("cas", tags.lock);
  ExpectWithinFiveSd("cas retries", after[0] - before[0], retries, retries_var, 0.05);
  ExpectWithinFiveSd("cas delay", after[1] - before[1], delay, delay_var, 0.05);
}

// Block rate 1 ms; waits from 50 us (kept 1 time in 20, as 20 waits of
// 1 ms) to 2 ms (always kept, as themselves). The waits divide the rate, so
// the count's R/d is exact and the count unbiased too.
TEST(SamplingTest, BlockProfileDebiasingIsUnbiased) {
  constexpr int64_t kRate = 1'000'000;
  constexpr int kEvents = 100'000;
  ScopedRates rates(kKeep, kRate, kKeep);
  const EventTags tags{"sampling.block"};
  const int64_t waits[] = {50'000,  100'000, 125'000,   200'000,
                           250'000, 500'000, 1'000'000, 2'000'000};
  lockprof::agent::StackTrace stack;
  lockprof::agent::CaptureStack(__builtin_frame_address(0), &stack);
  const auto before = Totals("block", tags.lock);
  double delay = 0, delay_var = 0, count_var = 0;
  for (int i = 0; i < kEvents; ++i) {
    const int64_t d = waits[i % 8];
    lockprof::agent::RecordBlock(d, tags, stack);
    delay += double(d);
    if (d < kRate) {
      delay_var += double(d) * double(kRate - d);
      count_var += double(kRate / d) - 1;
    }
  }
  const auto after = Totals("block", tags.lock);
  ExpectWithinFiveSd("block count", after[0] - before[0], kEvents, count_var, 0.05);
  ExpectWithinFiveSd("block delay", after[1] - before[1], delay, delay_var, 0.05);
}

// Waits that do not divide the rate: a kept wait of d stands for R/d waits,
// not a whole number. Rounding each one down would count a wait of 0.6 R as
// one for 1.67 (the total 40% short); rounded up at random with the
// probability of the fraction, the count stays unbiased (its variance per
// wait grows by at most (d/R)/4, added below).
TEST(SamplingTest, BlockCountOfWaitsThatDoNotDivideTheRateIsUnbiased) {
  constexpr int64_t kRate = 1'000'000;
  constexpr int kEvents = 100'000;
  ScopedRates rates(kKeep, kRate, kKeep);
  const EventTags tags{"sampling.block.fraction"};
  const int64_t waits[] = {300'000, 333'333, 450'000, 600'000, 700'000, 999'999};
  constexpr int kWaits = sizeof waits / sizeof waits[0];
  lockprof::agent::StackTrace stack;
  lockprof::agent::CaptureStack(__builtin_frame_address(0), &stack);
  const auto before = Totals("block", tags.lock);
  double delay = 0, delay_var = 0, count_var = 0;
  for (int i = 0; i < kEvents; ++i) {
    const int64_t d = waits[i % kWaits];
    lockprof::agent::RecordBlock(d, tags, stack);
    delay += double(d);
    delay_var += double(d) * double(kRate - d);
    count_var += double(kRate) / double(d) - 1 + double(d) / double(kRate) / 4;
  }
  const auto after = Totals("block", tags.lock);
  ExpectWithinFiveSd("block count", after[0] - before[0], kEvents, count_var, 0.05);
  ExpectWithinFiveSd("block delay", after[1] - before[1], delay, delay_var, 0.05);
}

// Which holds are timed is the countdown's business (each with probability
// exactly 1/rate: hold_profile_test CountdownSamplesExactlyOneInRate); a
// timed hold counts `rate` holds of its length, exactly.
TEST(SamplingTest, TimedHoldsAreScaledByTheRate) {
  constexpr int kRate = 100;
  ScopedRates rates(kKeep, kKeep, kRate);
  const EventTags tags{"sampling.hold"};
  const auto before = Totals("hold", tags.lock);
  lockprof::agent::RecordHold(7'000, kRate, tags, __builtin_frame_address(0));
  lockprof::agent::RecordHold(3'000, kRate, tags, __builtin_frame_address(0));
  const auto after = Totals("hold", tags.lock);
  EXPECT_EQ(after[0] - before[0], 2 * kRate);
  EXPECT_EQ(after[1] - before[1], 10'000 * kRate);
}

// A kept event stands for `rate` events: at a rate near INT_MAX, a 10 s
// hold stands for more nanoseconds than int64 holds. The total saturates
// rather than wrap to a negative delay (signed overflow, undefined).
TEST(SamplingTest, ScaledValuesSaturate) {
  ScopedRates rates(kKeep, kKeep, 1);
  const EventTags tags{"sampling.saturate"};
  lockprof::agent::RecordHold(10'000'000'000, std::numeric_limits<int>::max(), tags,
                              __builtin_frame_address(0));
  const auto after = Totals("hold", tags.lock);
  EXPECT_EQ(after[0], std::numeric_limits<int>::max());
  EXPECT_EQ(after[1], std::numeric_limits<int64_t>::max());
}

}  // namespace
