// The debug=1 text form, read back by go tool pprof, gives the same totals as
// the protobuf form, also when sampling (pprof multiplies text values by the
// "sampling period" line).
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::FetchProfile;
using lockprof::testing::FetchProfileBytes;
using lockprof::testing::GoPprof;
using lockprof::testing::ParseProfile;
using lockprof::testing::ReadFile;
using lockprof::testing::SumValues;
using lockprof::testing::WriteTempFile;

ABSL_ATTRIBUTE_NOINLINE void TextProfileSection(lockprof::Mutex& mu) {
  lockprof::MutexLock lock(&mu);
  std::this_thread::sleep_for(std::chrono::microseconds(300));
}

// `threads` threads each run `sections` TextProfileSections of `mu`.
void ContendInSections(lockprof::Mutex& mu, int threads, int sections) {
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&] {
      for (int i = 0; i < sections; ++i) TextProfileSection(mu);
    });
  }
  for (auto& t : running) t.join();
}

// go tool pprof's reading of the debug=1 text of `name` has the proto's
// totals.
void ExpectTextReadsAsTheProto(const char* name) {
  const std::string text = FetchProfileBytes(name, 1);
  const auto proto = FetchProfile(name);
  ASSERT_GT(proto.sample_size(), 0) << name;
  // go tool pprof converts the legacy text into a protobuf profile.
  const std::string converted = WriteTempFile("", ".pb.gz");
  int status;
  std::string out = GoPprof(
      "-proto -symbolize=none -output " + converted + " " + WriteTempFile(text, ".txt"), &status);
  ASSERT_EQ(status, 0) << out;
  const auto back = ParseProfile(ReadFile(converted));
  for (int index : {0, 1}) {
    const double want = double(SumValues(proto, index));
    EXPECT_NEAR(double(SumValues(back, index)), want, 0.001 * want + 5 * 1) << name << index << "\n"
                                                                            << text;
  }
}

TEST(TextProfileTest, GoToolPprofReadsTheSameTotalsAsTheProto) {
  lockprof::testing::ScopedRates rates(/*mutex_fraction=*/5, /*block_rate_ns=*/1, /*hold=*/0);
  lockprof::Mutex mu{"text.profile"};
  ContendInSections(mu, 3, 300);
  for (const char* name : {"mutex", "block"}) {
    EXPECT_NE(FetchProfileBytes(name, 1).find(std::string(name) == "mutex" ? "sampling period=5\n"
                                                                           : "--- contention:"),
              std::string::npos);
    ExpectTextReadsAsTheProto(name);
  }
}

// Values recorded at one rate, read at another: the text must not divide
// them by today's rate (two contentions at rate 1 read as 0 at rate 1000).
TEST(TextProfileTest, ValuesRecordedAtAnotherRateKeepTheirTotals) {
  lockprof::testing::ScopedRates rates(/*mutex_fraction=*/1, /*block_rate_ns=*/1, /*hold=*/1);
  lockprof::Mutex mu{"text.rate.change"};
  // Until the two threads contended: on a loaded machine the second may
  // start after the first's three sections ended (an empty mutex profile).
  const int64_t before = SumValues(FetchProfile("mutex"), 0, "TextProfileSection");
  for (int i = 0; i < 1000 && SumValues(FetchProfile("mutex"), 0, "TextProfileSection") == before;
       ++i) {
    ContendInSections(mu, 2, 3);
  }
  lockprof::testing::ScopedRates later(/*mutex_fraction=*/1000, /*block_rate_ns=*/1,
                                       /*hold=*/100000);
  ExpectTextReadsAsTheProto("mutex");
  ExpectTextReadsAsTheProto("hold");
}

}  // namespace
