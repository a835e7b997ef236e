// lockprof_lock_waits_total: every acquisition that found its lock taken,
// whether the wait ended while spinning (in no profile) or after a sleep (in
// lockprof_lock_contentions_total as well), and nothing else.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::ContendOnce;
using lockprof::testing::ScrapeMetrics;

// A series' value, 0 where the scrape has none yet.
double Value(const std::string& text, const std::string& series) {
  const double v = lockprof::testing::MetricValue(text, series);
  return v == v ? v : 0;
}

std::string Series(const char* metric, const std::string& labels) {
  return std::string(metric) + "{" + labels + "}";
}

double Waits(const std::string& m, const std::string& labels) {
  return Value(m, Series("lockprof_lock_waits_total", labels));
}

double Contentions(const std::string& m, const std::string& labels) {
  return Value(m, Series("lockprof_lock_contentions_total", labels));
}

class LockWaitsMetricTest : public ::testing::Test {
 protected:
  lockprof::testing::ScopedRates rates_;
};

TEST_F(LockWaitsMetricTest, UncontendedAcquisitionsAreNoWaits) {
  static lockprof::Mutex mu{"waits.uncontended"};
  static lockprof::SharedMutex shared{"waits.uncontended.shared"};
  for (int i = 0; i < 10000; ++i) {
    mu.lock();
    mu.unlock();
    shared.lock();
    shared.unlock();
    shared.lock_shared();
    shared.unlock_shared();
  }
  const std::string m = ScrapeMetrics();
  EXPECT_EQ(Waits(m, "lock=\"waits.uncontended\""), 0) << m;
  EXPECT_EQ(Waits(m, "lock=\"waits.uncontended.shared\",mode=\"write\""), 0);
  EXPECT_EQ(Waits(m, "lock=\"waits.uncontended.shared\",mode=\"read\""), 0);
}

// A 50 ms hold outlasts any spin: each wait sleeps, and is counted once in
// both series.
TEST_F(LockWaitsMetricTest, WaitsThatSleptAreCountedInBothSeries) {
  static lockprof::Mutex mu{"waits.slept"};
  static lockprof::SharedMutex shared{"waits.slept.shared"};
  for (int i = 0; i < 3; ++i) {
    ContendOnce(mu, std::chrono::milliseconds(50), [&] {
      mu.lock();
      mu.unlock();
    });
    ContendOnce(shared, std::chrono::milliseconds(50), [&] {
      shared.lock_shared();
      shared.unlock_shared();
    });
    ContendOnce(shared, std::chrono::milliseconds(50), [&] {
      shared.lock();
      shared.unlock();
    });
  }
  const std::string m = ScrapeMetrics();
  // The waiter may, rarely, not run before the hold ends: then neither counts.
  for (const std::string labels :
       {"lock=\"waits.slept\"", "lock=\"waits.slept.shared\",mode=\"read\"",
        "lock=\"waits.slept.shared\",mode=\"write\""}) {
    EXPECT_GE(Waits(m, labels), 1) << labels << "\n" << m;
    EXPECT_EQ(Waits(m, labels), Contentions(m, labels)) << labels;
  }
}

TEST_F(LockWaitsMetricTest, NothingIsCountedWithTheBlockProfileOff) {
  lockprof::SetBlockProfileRate(0);
  static lockprof::Mutex mu{"waits.block_off"};
  ContendOnce(mu, std::chrono::milliseconds(20), [&] {
    mu.lock();
    mu.unlock();
  });
  EXPECT_EQ(Waits(ScrapeMetrics(), "lock=\"waits.block_off\""), 0);
}

// The main thread holds the lock while a second thread starts to lock it,
// and releases it after a delay that grows from round to round, from none to
// longer than the spin: some round lets the waiter in while it still spins.
// That wait is in lockprof_lock_waits_total but not in
// lockprof_lock_contentions_total, and in no profile.
TEST_F(LockWaitsMetricTest, WaitsThatEndWhileSpinningAreCountedAsWaitsOnly) {
  static lockprof::Mutex mu{"waits.spun"};
  const std::string labels = "lock=\"waits.spun\"";
  std::atomic<int> round{0};
  std::atomic<int> locking{0};
  std::atomic<int> done{0};
  std::thread waiter([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (int r = 1;; ++r) {
      int seen;
      while ((seen = round.load()) < r && seen >= 0) {
      }
      if (seen < 0) return;
      locking.store(r);
      mu.lock();
      mu.unlock();
      done.store(r);
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string m;
  int r = 1;
  for (;; ++r) {
    mu.lock();
    round.store(r);
    while (locking.load() < r) {
    }
    // 0 to ~20 us of holding after the waiter said it locks.
    const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds((r % 128) * 160);
    while (std::chrono::steady_clock::now() < until) {
    }
    mu.unlock();
    while (done.load() < r) {
    }
    if (r % 64 == 0) {
      m = ScrapeMetrics();
      if (Waits(m, labels) > Contentions(m, labels)) break;
      if (std::chrono::steady_clock::now() > deadline) break;
    }
  }
  round.store(-1);
  waiter.join();
  EXPECT_GT(Waits(m, labels), Contentions(m, labels)) << r << " rounds\n" << m;
  EXPECT_LE(Waits(m, labels), r);  // At most one wait per round.
}

}  // namespace
