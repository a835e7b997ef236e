// The debug=1 text form, read back by go tool pprof, gives the same totals as
// the protobuf form, also when sampling (pprof multiplies text values by the
// "sampling period" line).
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lockprof/agent/pprof/text_profile.h"
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

// A function or file name with a newline (a plugin's symbol, a DWARF file
// name: bytes the program brings) cannot forge a line of the text: its
// control bytes are escaped, and the text holds the one sample it has.
TEST(TextProfileTest, ANameWithANewlineForgesNoSample) {
  using namespace lockprof::agent;
  ResolvedProfile rp;
  rp.info = &kProfiles[size_t(ProfileId::kMutex)];
  rp.locations.push_back({0x1000, -1, {}});
  SourceFrame f;
  f.function = "f\n7 7 @ 0x2\n";
  f.file = "a.cc\n8 8 @ 0x3";
  rp.locations[0].frames.push_back(f);
  ResolvedSample s;
  s.locations = {0};
  s.return_addresses = {0x1001};
  s.values[0] = 1;
  s.values[1] = 1;
  rp.samples.push_back(s);
  std::ostringstream out;
  WriteTextProfile(rp, out);
  const std::string text = out.str();
  EXPECT_EQ(lockprof::testing::CountOf(text, "\n1 1 @ 0x1001\n"), 1u) << text;
  EXPECT_EQ(text.find("\n7 7 @"), std::string::npos) << text;
  EXPECT_EQ(text.find("\n8 8 @"), std::string::npos) << text;
  EXPECT_NE(text.find("f\\x0a7 7 @ 0x2\\x0a"), std::string::npos) << text;
}

}  // namespace
