// The uploader against a failing Pyroscope: 5xx (retried with backoff),
// 401 (not retried, logged once with the server's message), a server that
// hangs (deadlines, a bounded queue, drops counted, the application never
// waits), and a shutdown deadline that holds while the server hangs.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "lifecycle_util.h"
#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "test_util.h"
#include "uploader_log.h"

namespace {

using lockprof::agent::ProfileId;
using lockprof::agent::UploadResult;
using lockprof::testing::Receiver;
using Clock = std::chrono::steady_clock;

using lockprof::testing::CaptureLog;
using lockprof::testing::Logged;

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
  { lockprof::testing::UploaderLog::Clear(); }
  return o;
}

// A series of the admin endpoint's /metrics, as served (0 if absent).
double Served(const std::string& series) {
  if (lockprof::AdminServerPort() == 0) {
    EXPECT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  }
  int status = 0;
  const std::string text =
      lockprof::testing::HttpGet(lockprof::AdminServerPort(), "/metrics", &status);
  EXPECT_EQ(status, 200);
  const double v = lockprof::testing::MetricValue(text, series);
  return std::isnan(v) ? 0 : v;
}

constexpr char kServedSuccesses[] = "lockprof_uploads_total{profile=\"mutex\",result=\"success\"}";
constexpr char kServedRetries[] = "lockprof_upload_retries_total";

TEST(UploaderFaultsTest, ServerErrorsAreRetriedWithExponentialBackoff) {
  Receiver receiver({"-fail-first=3"});
  lockprof::UploaderOptions o = Options(receiver);
  o.max_attempts = 5;
  o.backoff_base = std::chrono::milliseconds(100);
  o.shutdown_timeout = std::chrono::seconds(20);
  const double served_successes = Served(kServedSuccesses), served_retries = Served(kServedRetries);
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
  // What /metrics serves counts the same.
  EXPECT_EQ(Served(kServedSuccesses) - served_successes, 1);
  EXPECT_EQ(Served(kServedRetries) - served_retries, 3);
  EXPECT_EQ(Served("lockprof_upload_queue_length"), 0);
}

// Uploads one profile (the last interval, sent by StopUploader) with `o`,
// `max_attempts` attempts 10 ms apart; returns what the counters gained.
Counts UploadOnce(lockprof::UploaderOptions o, int max_attempts) {
  o.max_attempts = max_attempts;
  o.backoff_base = std::chrono::milliseconds(10);
  const Counts before = Counts::Now(ProfileId::kMutex);
  EXPECT_TRUE(lockprof::StartUploader(o).ok());
  lockprof::StopUploader();
  return Counts::Now(ProfileId::kMutex) - before;
}

// The defaults README "Continuous profiling" documents.
TEST(UploaderFaultsTest, DefaultsAreTheDocumentedOnes) {
  const lockprof::UploaderOptions o;
  EXPECT_EQ(o.interval, std::chrono::seconds(15));
  EXPECT_EQ(o.request_timeout, std::chrono::seconds(10));
  EXPECT_EQ(o.max_attempts, 3);
  EXPECT_EQ(o.backoff_base, std::chrono::seconds(1));
  EXPECT_EQ(o.queue_capacity, 32u);
  EXPECT_EQ(o.shutdown_timeout, std::chrono::seconds(5));
}

// 408 and 429 are retried like 5xx; another 4xx is not.
TEST(UploaderFaultsTest, RequestTimeoutAndTooManyRequestsAreRetriedOtherClientErrorsAreNot) {
  for (const std::string mode : {"408", "429", "400"}) {
    Receiver receiver({"-mode=" + mode});
    const Counts d = UploadOnce(Options(receiver), 3);
    const bool retried = mode != "400";
    EXPECT_EQ(d.failure, 1u) << mode;
    EXPECT_EQ(d.retries, retried ? 2u : 0u) << mode;
    EXPECT_EQ(receiver.Requests().size(), retried ? 3u : 1u) << mode;
  }
}

// Nothing listens: connection errors are retried too.
TEST(UploaderFaultsTest, ConnectionErrorsAreRetried) {
  lockprof::UploaderOptions o;
  {
    Receiver gone;  // Its port, free again once it stopped.
    o = Options(gone);
  }
  const Counts d = UploadOnce(o, 3);
  EXPECT_EQ(d.failure, 1u);
  EXPECT_EQ(d.retries, 2u);
}

// A server that resets the connection once it has the request (no answer
// at all) may have stored it: not sent again, since Pyroscope would add
// the copy (pyroscope-go never retries), and logged as such.
TEST(UploaderFaultsTest, RequestsThatGotNoAnswerOnceSentAreNotRetried) {
  Receiver receiver({"-mode=reset"});
  const Counts d = UploadOnce(Options(receiver), 3);
  EXPECT_EQ(d.failure, 1u);
  EXPECT_EQ(d.retries, 0u);
  const auto requests = receiver.Requests();
  EXPECT_EQ(requests.size(), 1u);
  for (const auto& r : requests) EXPECT_EQ(r.status, 0) << r.message;
  const auto log = Logged();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("not retried"), std::string::npos) << log[0];
}

TEST(UploaderFaultsTest, GivesUpAfterMaxAttemptsAndSaysWhy) {
  Receiver receiver({"-mode=500"});
  const Counts d = UploadOnce(Options(receiver), 2);
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
  o.request_timeout = std::chrono::milliseconds(1000);
  o.max_attempts = 2;
  o.backoff_base = std::chrono::milliseconds(50);
  o.queue_capacity = 3;
  o.shutdown_timeout = std::chrono::milliseconds(500);
  const Counts mutex0 = Counts::Now(ProfileId::kMutex);
  const Counts block0 = Counts::Now(ProfileId::kBlock);
  ASSERT_TRUE(lockprof::StartUploader(o).ok());

  // The application keeps locking and writing its metrics, which nothing
  // the uploader does may make it wait for: the thread must not sleep (a
  // voluntary context switch: a futex or socket wait) while the receiver
  // hangs. Being preempted (involuntary) is the loaded machine's doing and
  // is not counted; a latency percentile would count it (p99.9 reached
  // 20 ms on a loaded 2-core machine with no sleep at all).
  static lockprof::Mutex mu{"faults.app"};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> app_rounds{0}, app_sleeps{-1}, longest_round_ns{0};
  std::vector<int64_t> op_ns;
  op_ns.reserve(1 << 20);
  std::thread app([&] {
    // Counted from the 100th round on: the first rounds pay one-time costs
    // (this thread's lock record, the lock-order edges of WriteMetrics'
    // locks, first allocations) that may sleep, and are no wait for the
    // uploader.
    int64_t sleeps_before = -1;
    std::string metrics;
    while (!stop) {
      if (app_rounds == 100) sleeps_before = lockprof::testing::ThreadVoluntarySwitches();
      const int64_t start = lockprof::testing::NowNanos();
      { std::lock_guard<lockprof::Mutex> l(mu); }
      metrics.clear();
      lockprof::WriteMetrics(&metrics);
      const int64_t took = lockprof::testing::NowNanos() - start;
      if (op_ns.size() < op_ns.capacity()) op_ns.push_back(took);
      ++app_rounds;
    }
    app_sleeps =
        sleeps_before < 0 ? 0 : lockprof::testing::ThreadVoluntarySwitches() - sleeps_before;
  });
  // A scraper writes profiles meanwhile, as the uploader does (both build
  // profiles: they may take turns, briefly, but never for a request).
  std::thread scraper([&] {
    while (!stop) {
      const int64_t start = lockprof::testing::NowNanos();
      lockprof::testing::FetchProfileBytes("mutex");
      const int64_t took = lockprof::testing::NowNanos() - start;
      if (took > longest_round_ns) longest_round_ns = took;
    }
  });
  int64_t max_queue = 0;
  int64_t rounds_per_second_min = INT64_MAX;
  double max_served_queue = 0;
  for (int s = 0; s < 3; ++s) {
    const int64_t start = app_rounds;
    for (auto end = Clock::now() + std::chrono::seconds(1); Clock::now() < end;) {
      max_queue = std::max(max_queue, lockprof::agent::UploadQueueLength());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    rounds_per_second_min = std::min(rounds_per_second_min, app_rounds - start);
    max_served_queue = std::max(max_served_queue, Served("lockprof_upload_queue_length"));
  }
  const auto stop_start = Clock::now();
  lockprof::StopUploader();
  const auto stop_took = Clock::now() - stop_start;
  stop = true;
  app.join();
  scraper.join();

  std::printf("application: %zu lock and metrics rounds, p99.9 %jd ns, max %jd ns, %jd sleeps\n",
              op_ns.size(), intmax_t(lockprof::testing::Percentile(op_ns, 0.999)),
              intmax_t(op_ns.empty() ? 0 : *std::max_element(op_ns.begin(), op_ns.end())),
              intmax_t(app_sleeps.load()));
  // Waiting for the uploader sleeps on every wait: on each profile collected
  // (30 of them here, 41 sleeps measured), thousands of times if each
  // operation waits, and for a request timeout (1 s) if one does, which the
  // longest operation shows. ThreadSanitizer's runtime sleeps on its own
  // locks now and then (0 to 2 times in these 3 s in twelve runs; never in
  // the optimised build). AddressSanitizer's allocator is shared with the
  // scraper and the uploader's threads and sleeps 16 to 27 times here: a
  // sched_switch trace put every one of the application thread's sleeps in
  // the allocator's size-class mutex (SizeClassAllocator64, Semaphore::Wait
  // under operator new), none in lockprof. Under it the count cannot tell
  // lockprof's waits from the allocator's, so only the longest operation
  // and the rounds per second are checked there; the other builds check the
  // count.
#ifndef LOCKPROF_TEST_ASAN
  constexpr int64_t kRuntimeSleeps = 10;
  EXPECT_LE(app_sleeps.load(), kRuntimeSleeps) << "the application waited for the uploader";
#endif
  EXPECT_LT(op_ns.empty() ? 0 : *std::max_element(op_ns.begin(), op_ns.end()), 500'000'000)
      << "the application waited for the uploader";
  EXPECT_LE(max_queue, 3);
  EXPECT_GE(max_served_queue, 1) << "/metrics shows the queue";
  EXPECT_LE(max_served_queue, 3);
  EXPECT_GT(rounds_per_second_min, 0) << "the application waited for the uploader";
  // Waiting for one hung request would take a whole request timeout (1 s);
  // a profile is milliseconds, half a second allows for a loaded machine.
  EXPECT_LT(longest_round_ns.load(), 500'000'000) << "a scrape waited for the uploader";
  const Counts m = Counts::Now(ProfileId::kMutex) - mutex0;
  const Counts b = Counts::Now(ProfileId::kBlock) - block0;
  EXPECT_EQ(m.success + b.success, 0u);
  EXPECT_GT(m.dropped + b.dropped, 0u) << "a full queue drops profiles";
  EXPECT_GT(m.failure + b.failure, 0u) << "timed-out requests count as failures";
  // A hung request was sent: not sent again (the server may store it).
  EXPECT_EQ(m.retries, 0u);
  // The requests the receiver hung on ended because the client gave up.
  const auto requests = receiver.Requests();
  EXPECT_GT(requests.size(), 0u);
  for (const auto& r : requests) EXPECT_EQ(r.status, 504) << r.message;
  // Stop waits for the shutdown deadline, not for the hung request (a
  // liveness bound, generous for a loaded machine).
  EXPECT_LT(stop_took, std::chrono::seconds(5));
  EXPECT_EQ(lockprof::agent::UploadQueueLength(), 0);
}

// A full queue drops its oldest profile: once the server is back, the first
// profile sent is one of the last intervals, not the first one queued. The
// first request hangs 1.5 s while intervals of 100 ms queue up in 2 places.
TEST(UploaderFaultsTest, AFullQueueDropsItsOldestProfile) {
  Receiver receiver({"-mode=hang"});
  lockprof::UploaderOptions o = Options(receiver);
  o.interval = std::chrono::milliseconds(100);
  o.request_timeout = std::chrono::milliseconds(1500);
  o.max_attempts = 1;
  o.queue_capacity = 2;
  const Counts before = Counts::Now(ProfileId::kMutex);
  const int64_t start = lockprof::agent::WallNanos();
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  receiver.SetMode("ok");  // The hung request stays hung until it times out.
  for (int i = 0; i < 100 && receiver.Uploads("mutex").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  lockprof::StopUploader();
  const auto uploads = receiver.Uploads("mutex");
  ASSERT_FALSE(uploads.empty());
  const Counts d = Counts::Now(ProfileId::kMutex) - before;
  EXPECT_GT(d.dropped, 5u);
  // Dropping the newest instead would send the interval from ~0.2 s first.
  EXPECT_GT(uploads.front().from() - start, 1'000'000'000)
      << "the first profile sent after the hang covers " << (uploads.front().from() - start) / 1e6
      << " ms after the start";
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
