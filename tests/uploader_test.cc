// Continuous upload to a strict Pyroscope stand-in: what arrives is what
// pyroscope-go would send, `go tool pprof` reads it, and the per-interval
// deltas add up to the cumulative profile.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "lockprof/agent/record/clock.h"
#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "test_util.h"

// Outside namespace lockprof: these frames must stay in the profiles.
// After the critical section, a CAS loop that retries once by construction
// (the function's first call changes the value): the cas profile.
ABSL_ATTRIBUTE_NOINLINE void UploadTestCriticalSection(lockprof::Mutex& mu,
                                                       lockprof::Atomic<int64_t>& value) {
  {
    std::lock_guard<lockprof::Mutex> lock(mu);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  bool interfered = false;
  value.Update([&](int64_t old) {
    if (!interfered) value.fetch_add(1), interfered = true;
    return old + 1;
  });
}

namespace {

using lockprof::testing::FetchProfile;
using lockprof::testing::GoPprof;
using lockprof::testing::ParseProfile;
using lockprof::testing::Receiver;
using lockprof::testing::ScopedRates;
using lockprof::testing::StackFunctions;
using lockprof::testing::TopFunction;
using lockprof::testing::Upload;

// Runs contending threads until destroyed.
class Workload {
 public:
  explicit Workload(int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        while (!stop_) UploadTestCriticalSection(mu_, value_);
      });
    }
  }
  ~Workload() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

 private:
  lockprof::Mutex mu_{"upload.cache"};
  lockprof::Atomic<int64_t> value_{"upload.value"};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Values per (stack, labels), summed: merges samples that resolve alike.
using StackValues = std::map<std::string, std::pair<int64_t, int64_t>>;

void AddProfile(const perftools::profiles::Profile& p, StackValues* into) {
  for (const auto& s : p.sample()) {
    std::string key;
    for (const std::string& f : StackFunctions(p, s)) key += f + ";";
    for (const auto& l : s.label()) {
      key += "|" + p.string_table(int(l.key())) + "=" + p.string_table(int(l.str())) +
             std::to_string(l.num());
    }
    (*into)[key].first += s.value(0);
    (*into)[key].second += s.value(1);
  }
}

StackValues Cumulative(const std::string& profile) {
  StackValues v;
  AddProfile(FetchProfile(profile), &v);
  return v;
}

void ExpectContiguous(const std::vector<Upload>& uploads) {
  for (size_t i = 0; i < uploads.size(); ++i) {
    EXPECT_LT(uploads[i].from(), uploads[i].until());
    if (i > 0) {
      EXPECT_EQ(uploads[i].from(), uploads[i - 1].until()) << "gap or overlap at " << i;
    }
  }
}

TEST(UploaderTest, DeltasOfConsecutiveUploadsAddUpToTheCumulativeProfile) {
  Receiver receiver;
  lockprof::UploaderOptions o;
  o.url = receiver.url();
  o.app_name = "uploader-test";
  o.labels = {{"env", "test"}, {"region", "eu"}};
  o.interval = std::chrono::milliseconds(300);
  o.profiles = {"mutex", "block", "hold", "cas"};
  ScopedRates rates(ScopedRates::kKeep, ScopedRates::kKeep, 100);
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  {
    Workload work(4);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  }
  lockprof::StopUploader();  // Sends the last interval.

  // The cumulative profiles, read before this thread locks anything else:
  // with the interposer linked in, gtest's own mutex (SCOPED_TRACE takes it)
  // is a lock of the program's, and its holds would be sampled after the
  // last upload.
  const std::pair<std::string, std::string> kinds[] = {
      {"mutex", "mutex"}, {"block", "block"}, {"hold", "hold_duration"}, {"cas", "cas_duration"}};
  std::map<std::string, StackValues> cumulatives;
  for (const auto& [profile, metric] : kinds) cumulatives[profile] = Cumulative(profile);
  for (const auto& [profile, metric] : kinds) {
    SCOPED_TRACE(profile);
    std::vector<Upload> uploads = receiver.Uploads(metric);
    ASSERT_GE(uploads.size(), 4u);
    ExpectContiguous(uploads);
    StackValues sum;
    for (const Upload& u : uploads) {
      const auto p = ParseProfile(Receiver::ReadFile(u.profile_path));
      EXPECT_EQ(p.time_nanos(), u.from());
      EXPECT_EQ(p.duration_nanos(), u.until() - u.from());
      AddProfile(p, &sum);
      EXPECT_EQ(u.meta.at("service_name"), "uploader-test");
      EXPECT_EQ(u.meta.at("labels"), "env=test,region=eu");
      EXPECT_EQ(u.meta.at("spy"), "lockprof");
    }
    const StackValues& cumulative = cumulatives[profile];
    EXPECT_EQ(sum, cumulative);
    bool found = false;
    for (const auto& [stack, v] : cumulative)
      found |= stack.find("UploadTestCritical") != std::string::npos;
    EXPECT_TRUE(found);
  }
  const Upload mutex = receiver.Uploads("mutex").front();
  EXPECT_EQ(mutex.meta.at("display_names"), "contentions:mutex_count,delay:mutex_duration");
  EXPECT_EQ(mutex.meta.at("units"), "contentions:lock_samples,delay:lock_nanoseconds");
  EXPECT_EQ(mutex.meta.at("name"), "uploader-test{env=test,region=eu}");
  EXPECT_EQ(receiver.Uploads("block").front().meta.at("display_names"),
            "contentions:block_count,delay:block_duration");
  EXPECT_EQ(receiver.Uploads("hold_duration").front().meta.at("display_names"),
            "holds:hold_count,hold:hold_duration");
  EXPECT_FALSE(receiver.Uploads("cas_duration").empty());
  for (const auto& r : receiver.Requests()) EXPECT_EQ(r.status, 200) << r.message;
}

TEST(UploaderTest, ShutdownFlushesTheLastInterval) {
  Receiver receiver;
  lockprof::UploaderOptions o;
  o.url = receiver.url();
  o.app_name = "flush-test";
  o.interval = std::chrono::hours(1);  // Only the shutdown flush uploads.
  o.profiles = {"mutex"};
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  // The interval covers the workload. It starts where this process's
  // previous uploader stopped (an earlier test's), if any: no interval is
  // lost or sent twice across uploaders.
  const int64_t work_start = lockprof::agent::WallNanos();
  {
    Workload work(3);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const int64_t work_end = lockprof::agent::WallNanos();
  lockprof::StopUploader();
  const int64_t after = lockprof::agent::WallNanos();
  std::vector<Upload> uploads = receiver.Uploads("mutex");
  ASSERT_EQ(uploads.size(), 1u);
  EXPECT_LE(uploads[0].from(), work_start);
  EXPECT_GE(uploads[0].until(), work_end);
  EXPECT_LE(uploads[0].until(), after);
  int status;
  std::string top = GoPprof("-top -sample_index=delay " + uploads[0].profile_path, &status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_NE(top.find("UploadTestCriticalSection"), std::string::npos) << top;
}

TEST(UploaderTest, SendsCredentialsTenantAndHeaders) {
  Receiver receiver({"-basic-auth=alice:s3cret", "-tenant=acme", "-require-headers=X-Team=locks"});
  lockprof::UploaderOptions o;
  o.url = receiver.url();
  o.app_name = "auth-test";
  o.basic_auth_user = "alice";
  o.basic_auth_password = "s3cret";
  o.tenant_id = "acme";
  o.headers = {{"X-Team", "locks"}};
  o.interval = std::chrono::hours(1);
  o.profiles = {"mutex"};
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  lockprof::StopUploader();
  std::vector<Upload> uploads = receiver.Uploads("mutex");
  ASSERT_EQ(uploads.size(), 1u);
  EXPECT_EQ(uploads[0].meta.at("authorization"), "Basic YWxpY2U6czNjcmV0");
  EXPECT_EQ(uploads[0].meta.at("tenant"), "acme");
  EXPECT_EQ(uploads[0].meta.at("header.X-Team"), "locks");

  // A bearer token instead.
  Receiver bearer({"-bearer=tok123"});
  o.url = bearer.url();
  o.basic_auth_user = o.basic_auth_password = "";
  o.bearer_token = "tok123";
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  lockprof::StopUploader();
  ASSERT_EQ(bearer.Uploads("mutex").size(), 1u);
  EXPECT_EQ(bearer.Uploads("mutex")[0].meta.at("authorization"), "Bearer tok123");
}

TEST(UploaderTest, DemoUploadsShowCacheSetOnTopOfTheMutexDeltas) {
  Receiver receiver;
  lockprof::testing::Child demo(
      {LOCKPROF_DEMO_PATH, "--addr=127.0.0.1:0", "--duration=60", "--readers=3", "--writers=2",
       "--slow-ms=20"},
      {"LOCKPROF_PYROSCOPE_URL=" + receiver.url(), "LOCKPROF_PYROSCOPE_APP=lockprof-demo",
       "LOCKPROF_PYROSCOPE_LABELS=env=demo", "LOCKPROF_PYROSCOPE_INTERVAL=1",
       "LOCKPROF_MUTEX_FRACTION=1"});
  ASSERT_NE(demo.WaitForLine("uploading profiles to"), "");
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_EQ(demo.Stop(), 0);  // SIGTERM: the demo stops its uploader, which flushes.

  std::vector<Upload> uploads = receiver.Uploads("mutex");
  ASSERT_GE(uploads.size(), 3u);
  ExpectContiguous(uploads);
  std::string files;
  for (const Upload& u : uploads) {
    EXPECT_EQ(u.meta.at("name"), "lockprof-demo{env=demo}");
    files += " " + u.profile_path;
  }
  int status;
  // pprof merges the deltas: their sum is the demo's mutex profile.
  std::string top = GoPprof("-top -sample_index=delay" + files, &status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_NE(TopFunction(top).find("demo::Cache::Set"), std::string::npos) << top;
}

}  // namespace
