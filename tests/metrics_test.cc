// /metrics: per-lock histograms whose counts are exact or unbiased by
// construction, the exposition format as promtool checks it, and a real
// Prometheus server scraping the admin endpoint and answering PromQL.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "lockprof/agent/metrics/lock_metrics.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::agent::EventTags;
using lockprof::agent::LockMode;
using lockprof::testing::ContendOnce;
using lockprof::testing::RunCommand;
using lockprof::testing::ScrapeMetrics;
using lockprof::testing::WriteTempFile;

// The value of the sample named exactly `series` (name{labels}), or NaN.
double Value(const std::string& text, const std::string& series) {
  return lockprof::testing::MetricValue(text, series);
}

void Block(const EventTags& tags, int64_t wait_ns) {
  lockprof::agent::StackTrace stack;
  lockprof::agent::CaptureStack(__builtin_frame_address(0), &stack);
  lockprof::agent::RecordBlock(wait_ns, tags, stack);
}

// Restores the sampling rates a test changes.
class MetricsTest : public ::testing::Test {
 protected:
  void TearDown() override { lockprof::SetSlowAcquireHook(std::chrono::nanoseconds(0), nullptr); }
  lockprof::testing::ScopedRates rates_;
};

TEST(BucketIndex, BoundsAreInclusiveMicrosecondPowersOfTwo) {
  using lockprof::agent::BucketIndex;
  EXPECT_EQ(BucketIndex(0), 0);
  EXPECT_EQ(BucketIndex(1000), 0);
  EXPECT_EQ(BucketIndex(1001), 1);
  EXPECT_EQ(BucketIndex(2000), 1);
  EXPECT_EQ(BucketIndex(2001), 2);
  EXPECT_EQ(BucketIndex(int64_t{1000} << 23), 23);
  EXPECT_EQ(BucketIndex((int64_t{1000} << 23) + 1), lockprof::agent::kFiniteBuckets);
  EXPECT_EQ(BucketIndex(int64_t{1} << 62), lockprof::agent::kFiniteBuckets);
}

TEST_F(MetricsTest, WaitHistogramCountsEveryWaitInTheRightBucket) {
  // A block rate far above every wait: the block profile keeps few of these,
  // the metrics must still count all of them.
  lockprof::SetBlockProfileRate(1000000000);
  const EventTags tags{"metrics.buckets"};
  const int64_t waits[] = {500, 1000, 1001, 3000000, 9000000000};
  for (int64_t w : waits) Block(tags, w);
  const std::string m = ScrapeMetrics();
  const std::string b = "lockprof_lock_wait_seconds_bucket{lock=\"metrics.buckets\",le=";
  EXPECT_EQ(Value(m, b + "\"1e-06\"}"), 2) << m;
  EXPECT_EQ(Value(m, b + "\"2e-06\"}"), 3);
  EXPECT_EQ(Value(m, b + "\"0.002048\"}"), 3);
  EXPECT_EQ(Value(m, b + "\"0.004096\"}"), 4);
  EXPECT_EQ(Value(m, b + "\"8.388608\"}"), 4);
  EXPECT_EQ(Value(m, b + "\"+Inf\"}"), 5);
  EXPECT_EQ(Value(m, "lockprof_lock_wait_seconds_count{lock=\"metrics.buckets\"}"), 5);
  EXPECT_DOUBLE_EQ(Value(m, "lockprof_lock_wait_seconds_sum{lock=\"metrics.buckets\"}"),
                   (500 + 1000 + 1001 + 3000000 + 9000000000.0) / 1e9);
  EXPECT_EQ(Value(m, "lockprof_lock_contentions_total{lock=\"metrics.buckets\"}"), 5);
}

TEST_F(MetricsTest, WaitCountsDoNotDependOnBlockSampling) {
  lockprof::SetBlockProfileRate(1000000);  // 1 ms: a 10 us wait is kept 1 time in 100.
  const EventTags tags{"metrics.sampled"};
  for (int i = 0; i < 1000; ++i) Block(tags, 10000);
  const std::string m = ScrapeMetrics();
  EXPECT_EQ(Value(m, "lockprof_lock_wait_seconds_count{lock=\"metrics.sampled\"}"), 1000);
  EXPECT_DOUBLE_EQ(Value(m, "lockprof_lock_wait_seconds_sum{lock=\"metrics.sampled\"}"), 0.01);
}

TEST_F(MetricsTest, RealContendedMutexAppearsUnderItsName) {
  static lockprof::Mutex mu{"metrics.real"};
  const std::string count = "lockprof_lock_wait_seconds_count{lock=\"metrics.real\"}";
  // The waiter must go to sleep while the lock is held; retry in the
  // unlikely case the scheduler kept it off the CPU for the whole hold.
  for (int attempt = 0; attempt < 10 && !(Value(ScrapeMetrics(), count) >= 1); ++attempt) {
    ContendOnce(mu, std::chrono::milliseconds(50), [&] {
      mu.lock();
      mu.unlock();
    });
  }
  const std::string m = ScrapeMetrics();
  EXPECT_GE(Value(m, count), 1) << m;
  EXPECT_EQ(Value(m, count), Value(m, "lockprof_lock_contentions_total{lock=\"metrics.real\"}"));
  EXPECT_GT(Value(m, "lockprof_lock_wait_seconds_sum{lock=\"metrics.real\"}"), 0);
}

TEST_F(MetricsTest, ConditionWaitsAreNotLockWaits) {
  Block(EventTags{"metrics.cv", LockMode::kNone, -1, lockprof::agent::WaitKind::kCondition},
        5000000);
  EXPECT_TRUE(
      std::isnan(Value(ScrapeMetrics(), "lockprof_lock_wait_seconds_count{lock=\"metrics.cv\"}")));
  // A real CondVar wait of ~50 ms, notified with the mutex released, so
  // that re-locking does not contend either.
  static lockprof::Mutex mu{"metrics.cv.real"};
  static lockprof::CondVar cv;
  bool ready = false;
  std::atomic<bool> waiting{false};
  std::thread waiter([&] {
    std::unique_lock<lockprof::Mutex> lock(mu);
    waiting = true;
    cv.wait(lock, [&] { return ready; });
  });
  while (!waiting) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard<lockprof::Mutex> lock(mu);
    ready = true;
  }
  cv.notify_one();
  waiter.join();
  const double n =
      Value(ScrapeMetrics(), "lockprof_lock_wait_seconds_count{lock=\"metrics.cv.real\"}");
  // The waiter may, rarely, contend for the mutex itself; never 50 ms.
  if (!std::isnan(n)) {
    EXPECT_LT(Value(ScrapeMetrics(), "lockprof_lock_wait_seconds_sum{lock=\"metrics.cv.real\"}"),
              0.04);
  }
}

TEST_F(MetricsTest, HoldHistogramIsScaledByTheHoldRate) {
  static lockprof::Mutex mu{"metrics.hold"};
  lockprof::SetHoldProfileRate(8);
  constexpr int kLocks = 80000;
  // A new thread: its first stride is drawn at the new rate (a running
  // thread finishes the stride it drew at the old one first).
  std::thread([] {
    for (int i = 0; i < kLocks; ++i) {
      mu.lock();
      mu.unlock();
    }
  }).join();
  // About kLocks / 8 sections are sampled, each counting 8: an unbiased
  // estimate of kLocks with a relative spread near 1% (5% is 5 sd).
  // Unscaled (kLocks / 8) or scaled twice (kLocks * 8) falls far outside.
  const double n =
      Value(ScrapeMetrics(), "lockprof_lock_hold_seconds_count{lock=\"metrics.hold\"}");
  EXPECT_GT(n, kLocks * 0.95);
  EXPECT_LT(n, kLocks * 1.05);
  EXPECT_EQ(std::fmod(n, 8), 0);
}

TEST_F(MetricsTest, ReaderWriterSplitAndUnnamedLocks) {
  lockprof::SetHoldProfileRate(1);
  for (int i = 0; i < 3; ++i) Block(EventTags{"metrics.rw", LockMode::kRead}, 5000);
  for (int i = 0; i < 2; ++i) Block(EventTags{"metrics.rw", LockMode::kWrite}, 5000);
  lockprof::agent::RecordHold(7000, 1, EventTags{"metrics.rw", LockMode::kWrite},
                              __builtin_frame_address(0));
  Block(EventTags{nullptr}, 5000);
  const std::string m = ScrapeMetrics();
  EXPECT_EQ(Value(m, "lockprof_lock_wait_seconds_count{lock=\"metrics.rw\",mode=\"read\"}"), 3);
  EXPECT_EQ(Value(m, "lockprof_lock_wait_seconds_count{lock=\"metrics.rw\",mode=\"write\"}"), 2);
  EXPECT_EQ(Value(m, "lockprof_lock_hold_seconds_count{lock=\"metrics.rw\",mode=\"write\"}"), 1);
  EXPECT_EQ(Value(m, "lockprof_lock_hold_seconds_count{lock=\"metrics.rw\",mode=\"read\"}"), 0);
  EXPECT_GE(Value(m, "lockprof_lock_wait_seconds_count{lock=\"(unnamed)\"}"), 1);
}

TEST_F(MetricsTest, RealSharedMutexReadersWaitUnderModeRead) {
  static lockprof::SharedMutex mu{"metrics.shared"};
  const std::string read =
      "lockprof_lock_wait_seconds_count{lock=\"metrics.shared\",mode=\"read\"}";
  for (int attempt = 0; attempt < 10 && !(Value(ScrapeMetrics(), read) >= 1); ++attempt) {
    ContendOnce(mu, std::chrono::milliseconds(50), [&] {
      mu.lock_shared();
      mu.unlock_shared();
    });
  }
  const std::string m = ScrapeMetrics();
  EXPECT_GE(Value(m, read), 1) << m;
  EXPECT_GT(Value(m, "lockprof_lock_wait_seconds_sum{lock=\"metrics.shared\",mode=\"read\"}"),
            0.001);
}

TEST_F(MetricsTest, EqualNamesAtDifferentAddressesAreOneSeries) {
  static const char a[] = "metrics.merge";
  static const char b[] = "metrics.merge";
  ASSERT_NE(static_cast<const void*>(a), static_cast<const void*>(b));
  Block(EventTags{a}, 1000);
  Block(EventTags{b}, 1000);
  EXPECT_EQ(Value(ScrapeMetrics(), "lockprof_lock_wait_seconds_count{lock=\"metrics.merge\"}"), 2);
}

TEST_F(MetricsTest, LabelValuesAreEscapedAndPromtoolAcceptsThem) {
  Block(EventTags{"metrics.\"odd\\name\nline\xff"}, 1000);
  const std::string m = ScrapeMetrics();
  EXPECT_NE(m.find("lock=\"metrics.\\\"odd\\\\name\\nline\xEF\xBF\xBD\""), std::string::npos);
  int status;
  std::string out = RunCommand("promtool check metrics < " + WriteTempFile(m) + " 2>&1", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "");
}

TEST_F(MetricsTest, SlowAcquireHookSeesSlowWaitsOnly) {
  static std::mutex mu;  // The test's own bookkeeping: not a lockprof lock.
  static std::vector<std::pair<std::string, int64_t>> calls;
  calls.clear();
  lockprof::SetSlowAcquireHook(std::chrono::milliseconds(10), [](const lockprof::SlowAcquire& s) {
    std::lock_guard<std::mutex> lock(mu);
    calls.emplace_back(std::string(s.lock ? s.lock : "") + "/" + (s.mode ? s.mode : "-"),
                       s.waited.count());
    EXPECT_GT(s.stack_depth, 0);
  });
  Block(EventTags{"metrics.slow"}, 5000000);
  Block(EventTags{"metrics.slow", LockMode::kWrite}, 20000000);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0].first, "metrics.slow/write");
    EXPECT_EQ(calls[0].second, 20000000);
  }
  // Sampled: about 1 in 4 slow acquisitions (binomial, sd ~27 of 1000).
  calls.clear();
  lockprof::SetSlowAcquireHook(
      std::chrono::milliseconds(10),
      [](const lockprof::SlowAcquire&) {
        std::lock_guard<std::mutex> lock(mu);
        calls.emplace_back("", 0);
      },
      4);
  for (int i = 0; i < 4000; ++i) Block(EventTags{"metrics.slow"}, 20000000);
  EXPECT_GT(calls.size(), 850u);
  EXPECT_LT(calls.size(), 1150u);
  lockprof::SetSlowAcquireHook(std::chrono::nanoseconds(0), nullptr);
  calls.clear();
  Block(EventTags{"metrics.slow"}, 20000000);
  EXPECT_TRUE(calls.empty());
}

TEST_F(MetricsTest, SlowAcquireHookRunsOnTheWaitingThread) {
  static lockprof::Mutex lock{"metrics.slow.real"};
  static std::atomic<int> calls{0};
  static std::atomic<std::thread::id> caller{};
  lockprof::SetSlowAcquireHook(std::chrono::milliseconds(20), [](const lockprof::SlowAcquire& s) {
    if (s.lock != nullptr && std::string(s.lock) == "metrics.slow.real") {
      caller = std::this_thread::get_id();
      ++calls;
    }
  });
  std::thread::id waiter_id;
  for (int attempt = 0; attempt < 10 && calls == 0; ++attempt) {
    ContendOnce(
        lock, std::chrono::milliseconds(100),
        [&] {
          lock.lock();
          lock.unlock();
        },
        &waiter_id);
  }
  ASSERT_EQ(calls, 1);
  EXPECT_EQ(caller.load(), waiter_id);
}

TEST_F(MetricsTest, AdminEndpointServesMetricsThatPromtoolAccepts) {
  if (lockprof::AdminServerPort() == 0) {
    ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  }
  const int port = lockprof::AdminServerPort();
  // A busy process: contended named locks with holds sampled.
  lockprof::SetHoldProfileRate(10);
  static lockprof::Mutex mu{"metrics.busy"};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        std::lock_guard<lockprof::Mutex> lock(mu);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  int status;
  std::string headers;
  std::string first = lockprof::testing::HttpGet(port, "/metrics", &status, &headers);
  std::string body = lockprof::testing::HttpGet(port, "/metrics", &status, &headers);
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_EQ(status, 200);
  EXPECT_NE(headers.find("content-type: text/plain; version=0.0.4; charset=utf-8"),
            std::string::npos)
      << headers;
  EXPECT_GT(Value(body, "lockprof_lock_wait_seconds_count{lock=\"metrics.busy\"}"), 0) << body;
  EXPECT_GT(Value(body, "lockprof_lock_hold_seconds_count{lock=\"metrics.busy\"}"), 0);
  EXPECT_GE(Value(body, "lockprof_admin_requests_total"), 1);
  EXPECT_GE(Value(body, "lockprof_process_threads"), 5);
  EXPECT_EQ(Value(body, "lockprof_hold_profile_rate"), 10);
  std::string out =
      RunCommand("promtool check metrics < " + WriteTempFile(body) + " 2>&1", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "") << body;
}

// Must run last in this process: it fills the per-lock table.
TEST_F(MetricsTest, ZZLocksPastTheTableCapacityGoToOther) {
  constexpr int kNames = 300;
  static char names[kNames][32];
  for (int i = 0; i < kNames; ++i) {
    std::snprintf(names[i], sizeof names[i], "metrics.overflow.%03d", i);
    Block(EventTags{names[i]}, 1000);
  }
  const std::string m = ScrapeMetrics();
  double named = 0;
  for (int i = 0; i < kNames; ++i) {
    double v = Value(m, std::string("lockprof_lock_wait_seconds_count{lock=\"") + names[i] + "\"}");
    if (!std::isnan(v)) named += v;
  }
  const double other = Value(m, "lockprof_lock_wait_seconds_count{lock=\"(other)\"}");
  EXPECT_GT(other, 0);
  EXPECT_GT(named, 0);
  // Nothing is lost: what did not get its own series is under "(other)".
  EXPECT_EQ(named + other, kNames);
}

}  // namespace
