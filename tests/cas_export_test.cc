// The cas profile's exports, against a known number of CAS failures at
// mutex fraction 1 (every failure recorded): /debug/pprof/delta_cas reports
// each scrape's increment exactly once, and the uploader's cas profiles add
// up to the total.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "test_util.h"

namespace {

using lockprof::testing::HttpGet;
using lockprof::testing::ParseProfile;
using lockprof::testing::Receiver;
using lockprof::testing::ScopedRates;
using lockprof::testing::SumValuesWithLabels;
using lockprof::testing::Upload;

constexpr int kKeep = ScopedRates::kKeep;

// One Update of `value` whose first attempt fails, by construction: its
// update function changes the value behind the CAS's back the first time.
void UpdateRetryingOnce(lockprof::Atomic<int64_t>& value) {
  bool interfered = false;
  value.Update([&](int64_t old) {
    if (!interfered) {
      interfered = true;
      value.fetch_add(1);
    }
    return old + 1;
  });
}

// `n` Updates of `value` that each fail once.
ABSL_ATTRIBUTE_NOINLINE void CasFailures(lockprof::Atomic<int64_t>& value, int n) {
  for (int i = 0; i < n; ++i) UpdateRetryingOnce(value);
}

// The retries (value 0) of `p` for the Atomic named `lock`: each test uses
// its own, so that neither sees the other's in the process-wide profile.
int64_t Retries(const perftools::profiles::Profile& p, const std::string& lock) {
  return SumValuesWithLabels(p, 0, "CasFailures", {{"lock", lock}});
}

// The retries of `lock` /debug/pprof/delta_cas reports now.
int64_t DeltaRetries(int port, const std::string& lock) {
  int status = 0;
  const std::string body = HttpGet(port, "/debug/pprof/delta_cas", &status);
  EXPECT_EQ(status, 200) << body;
  return Retries(ParseProfile(body), lock);
}

TEST(CasExportTest, DeltaCasReportsEachScrapesIncrementOnce) {
  ScopedRates rates(1, kKeep, kKeep);
  ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  const int port = lockprof::AdminServerPort();
  lockprof::Atomic<int64_t> value{"export.delta"};
  DeltaRetries(port, "export.delta");  // The first scrape reports all since the start.
  // From one call site, so that all are one stack, whose earlier
  // increments each scrape must not report again.
  for (int n : {300, 200, 0}) {
    CasFailures(value, n);
    EXPECT_EQ(DeltaRetries(port, "export.delta"), n);
  }
  EXPECT_EQ(value.load(), 2 * 500);
  // The cumulative profile has all of them.
  int status = 0;
  const std::string cumulative = HttpGet(port, "/debug/pprof/cas", &status);
  EXPECT_EQ(Retries(ParseProfile(cumulative), "export.delta"), 500);
  lockprof::StopAdminServer();
}

// The uploader sends the cas profile's increments: whatever intervals the
// failures fall in, the uploads add up to them, each counted once.
TEST(CasExportTest, UploadedCasProfilesAddUpToTheFailures) {
  ScopedRates rates(1, kKeep, kKeep);
  Receiver receiver;
  lockprof::UploaderOptions o;
  o.url = receiver.url();
  o.app_name = "cas-export-test";
  o.profiles = {"cas"};
  o.interval = std::chrono::milliseconds(200);
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  lockprof::Atomic<int64_t> value{"export.upload"};
  auto uploaded = [&] {
    int64_t retries = 0;
    for (const Upload& u : receiver.Uploads()) {
      retries += Retries(ParseProfile(Receiver::ReadFile(u.profile_path)), "export.upload");
    }
    return retries;
  };
  // From one call site, so that all are one stack, whose earlier
  // increments an upload must not report again.
  int64_t total = 0;
  for (int n : {300, 200}) {
    CasFailures(value, n);
    total += n;
    // An interval ends and is uploaded before the next failures.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (uploaded() < total && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(uploaded(), total);
  }
  lockprof::StopUploader();  // Collects once more: nothing new.
  EXPECT_EQ(uploaded(), 500);
  for (const auto& r : receiver.Requests()) EXPECT_EQ(r.status, 200) << r.message;
}

}  // namespace
