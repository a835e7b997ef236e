// The uploader against a failing Pyroscope: 5xx (retried with backoff),
// 401 (not retried, logged once with the server's message), a server that
// hangs (deadlines, a bounded queue, drops counted, the application never
// waits), and a shutdown deadline that holds while the server hangs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>
#include <vector>

#include "lockprof/agent/metrics/health.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "test_util.h"

namespace {

using lockprof::agent::ProfileId;
using lockprof::agent::UploadResult;
using lockprof::testing::Receiver;
using Clock = std::chrono::steady_clock;

std::mutex g_log_mu;
std::vector<std::string> g_log;

void CaptureLog(const std::string& message) {
  std::lock_guard<std::mutex> l(g_log_mu);
  g_log.push_back(message);
}

std::vector<std::string> Logged() {
  std::lock_guard<std::mutex> l(g_log_mu);
  return g_log;
}

// Counter values now, to compare with later.
struct Counts {
  uint64_t success, failure, dropped, retries;
  static Counts Now(ProfileId id) {
    return {lockprof::agent::Uploads(id, UploadResult::kSuccess),
            lockprof::agent::Uploads(id, UploadResult::kFailure),
            lockprof::agent::Uploads(id, UploadResult::kDropped), lockprof::agent::UploadRetries()};
  }
  Counts operator-(const Counts& o) const {
    return {success - o.success, failure - o.failure, dropped - o.dropped, retries - o.retries};
  }
};

lockprof::UploaderOptions Options(const Receiver& r) {
  lockprof::UploaderOptions o;
  o.url = r.url();
  o.app_name = "faults-test";
  o.profiles = {"mutex"};
  o.interval = std::chrono::hours(1);
  o.log = CaptureLog;
  {
    std::lock_guard<std::mutex> l(g_log_mu);
    g_log.clear();
  }
  return o;
}

TEST(UploaderFaultsTest, ServerErrorsAreRetriedWithExponentialBackoff) {
  Receiver receiver({"-fail-first=3"});
  lockprof::UploaderOptions o = Options(receiver);
  o.max_attempts = 5;
  o.backoff_base = std::chrono::milliseconds(100);
  o.shutdown_timeout = std::chrono::seconds(20);
  const Counts before = Counts::Now(ProfileId::kMutex);
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  lockprof::StopUploader();  // One profile: the last interval.
  const Counts d = Counts::Now(ProfileId::kMutex) - before;
  EXPECT_EQ(d.success, 1u);
  EXPECT_EQ(d.failure, 0u);
  EXPECT_EQ(d.retries, 3u);
  const auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(requests[i].status, 500);
  EXPECT_EQ(requests[3].status, 200);
  // Retry n waits at least half of 100 ms * 2^(n-1): 50, 100, 200 ms.
  for (int i = 1; i < 4; ++i) {
    EXPECT_GE(requests[i].unix_ms - requests[i - 1].unix_ms, 50 << (i - 1)) << "retry " << i;
  }
  EXPECT_EQ(receiver.Uploads("mutex").size(), 1u);
}

TEST(UploaderFaultsTest, GivesUpAfterMaxAttemptsAndSaysWhy) {
  Receiver receiver({"-mode=500"});
  lockprof::UploaderOptions o = Options(receiver);
  o.max_attempts = 2;
  o.backoff_base = std::chrono::milliseconds(10);
  const Counts before = Counts::Now(ProfileId::kMutex);
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  lockprof::StopUploader();
  const Counts d = Counts::Now(ProfileId::kMutex) - before;
  EXPECT_EQ(d.failure, 1u);
  EXPECT_EQ(d.retries, 1u);
  EXPECT_EQ(receiver.Requests().size(), 2u);
  const auto log = Logged();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("HTTP 500"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("injected failure"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("gave up after 2 attempts"), std::string::npos) << log[0];
}

TEST(UploaderFaultsTest, UnauthorizedIsNotRetriedAndIsLoggedOnceWithTheServersMessage) {
  Receiver receiver({"-basic-auth=alice:right"});
  lockprof::UploaderOptions o = Options(receiver);
  o.basic_auth_user = "alice";
  o.basic_auth_password = "wrong";
  o.interval = std::chrono::milliseconds(200);
  o.max_attempts = 3;
  const Counts before = Counts::Now(ProfileId::kMutex);
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  lockprof::StopUploader();
  const Counts d = Counts::Now(ProfileId::kMutex) - before;
  const auto requests = receiver.Requests();
  ASSERT_GE(requests.size(), 4u);
  for (const auto& r : requests) EXPECT_EQ(r.status, 401);
  // One request per profile: none retried.
  EXPECT_EQ(d.failure, requests.size());
  EXPECT_EQ(d.retries, 0u);
  const auto log = Logged();
  ASSERT_EQ(log.size(), 1u) << "logged once, not once per upload";
  EXPECT_NE(log[0].find("HTTP 401"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("invalid credentials: basic auth required"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("check the credentials"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("not retried"), std::string::npos) << log[0];
}

TEST(UploaderFaultsTest, HangingServerCostsABoundedQueueAndNeverBlocksTheApplication) {
  Receiver receiver({"-mode=hang"});
  lockprof::UploaderOptions o = Options(receiver);
  o.profiles = {"mutex", "block"};
  o.interval = std::chrono::milliseconds(100);
  o.request_timeout = std::chrono::milliseconds(300);
  o.max_attempts = 2;
  o.backoff_base = std::chrono::milliseconds(50);
  o.queue_capacity = 3;
  o.shutdown_timeout = std::chrono::milliseconds(500);
  const Counts mutex0 = Counts::Now(ProfileId::kMutex);
  const Counts block0 = Counts::Now(ProfileId::kBlock);
  ASSERT_TRUE(lockprof::StartUploader(o).ok());

  // The application keeps locking, scraping metrics and writing profiles.
  static lockprof::Mutex mu{"faults.app"};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> app_rounds{0};
  std::thread app([&] {
    while (!stop) {
      { std::lock_guard<lockprof::Mutex> l(mu); }
      std::string metrics;
      lockprof::WriteMetrics(&metrics);
      lockprof::testing::FetchProfileBytes("mutex");
      ++app_rounds;
      const int64_t took = lockprof::testing::NowNanos() - start;
      if (took > longest_round_ns) longest_round_ns = took;
    }
  });
  int64_t max_queue = 0;
  int64_t rounds_per_second_min = INT64_MAX;
  for (int s = 0; s < 3; ++s) {
    const int64_t start = app_rounds;
    for (auto end = Clock::now() + std::chrono::seconds(1); Clock::now() < end;) {
      max_queue = std::max(max_queue, lockprof::agent::UploadQueueLength());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    rounds_per_second_min = std::min(rounds_per_second_min, app_rounds - start);
  }
  const auto stop_start = Clock::now();
  lockprof::StopUploader();
  const auto stop_took = Clock::now() - stop_start;
  stop = true;
  app.join();

  EXPECT_LE(max_queue, 3);
  EXPECT_GT(rounds_per_second_min, 0) << "the application waited for the uploader";
  const Counts m = Counts::Now(ProfileId::kMutex) - mutex0;
  const Counts b = Counts::Now(ProfileId::kBlock) - block0;
  EXPECT_EQ(m.success + b.success, 0u);
  EXPECT_GT(m.dropped + b.dropped, 0u) << "a full queue drops profiles";
  EXPECT_GT(m.failure + b.failure, 0u) << "timed-out requests count as failures";
  EXPECT_GT(m.retries, 0u);
  // The requests the receiver hung on ended because the client gave up.
  const auto requests = receiver.Requests();
  EXPECT_GT(requests.size(), 0u);
  for (const auto& r : requests) EXPECT_EQ(r.status, 504) << r.message;
  // Stop waits for the shutdown deadline, not for the hung request (a
  // liveness bound, generous for a loaded machine).
  EXPECT_LT(stop_took, std::chrono::seconds(5));
  EXPECT_EQ(lockprof::agent::UploadQueueLength(), 0);
}

TEST(UploaderFaultsTest, ShutdownDeadlineHoldsWhileTheServerHangs) {
  Receiver receiver({"-mode=hang"});
  lockprof::UploaderOptions o = Options(receiver);
  o.request_timeout = std::chrono::seconds(60);
  o.shutdown_timeout = std::chrono::milliseconds(300);
  const Counts before = Counts::Now(ProfileId::kMutex);
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  const auto start = Clock::now();
  lockprof::StopUploader();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10)) << "not the 60 s request timeout";
  const Counts d = Counts::Now(ProfileId::kMutex) - before;
  EXPECT_EQ(d.dropped, 1u);
  EXPECT_EQ(d.success + d.failure, 0u);
}

}  // namespace
