#include "lockprof/primitives/mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>

#include <mutex>
#include <thread>
#include <vector>
#include "absl/base/attributes.h"
#include "lockprof/agent/metrics.h"
#include "test_util.h"

namespace {

// A global needs no dynamic initialisation.
ABSL_CONST_INIT lockprof::Mutex g_global_mu;

// std::lock_guard & co. carry no thread-safety annotations: this test is
// about them, so the analysis is off here.
TEST(MutexTest, WorksWithStandardWrappers) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::Mutex mu;
  { std::lock_guard<lockprof::Mutex> g(mu); }
  {
    std::unique_lock<lockprof::Mutex> u(mu);
    EXPECT_TRUE(u.owns_lock());
  }
  lockprof::Mutex other;
  { std::scoped_lock both(mu, other); }
  EXPECT_TRUE(mu.try_lock());
  EXPECT_FALSE(mu.try_lock());
  mu.unlock();
  std::lock_guard<lockprof::Mutex> g(g_global_mu);
}

TEST(MutexTest, WorksWithConditionVariableAny) {
  lockprof::Mutex mu;
  std::condition_variable_any cv;
  bool ready = false;
  std::thread t([&] {
    std::lock_guard<lockprof::Mutex> g(mu);
    ready = true;
    cv.notify_one();
  });
  std::unique_lock<lockprof::Mutex> lock(mu);
  cv.wait(lock, [&] { return ready; });
  lock.unlock();
  t.join();
}

// At run time only; that the analysis accepts a guarded access under
// MutexLock and rejects one without it or after its scope is checked by
// compiling tests/thread_safety/mutex_lock_use.cc (the thread_safety_* tests).
TEST(MutexTest, MutexLockIsAnnotatedScopedLock) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::Mutex mu;
  {
    lockprof::MutexLock lock(&mu);
    mu.AssertHeld();
  }
  EXPECT_TRUE(mu.try_lock());
  mu.unlock();
}

// README: uncontended locking records nothing but the hold sampler's
// (off here), even with every other sampler at rate 1.
TEST(MutexTest, UncontendedMutexRecordsNothing) {
  lockprof::testing::ScopedRates rates(1, 1, 0);
  lockprof::Mutex mu{"uncontended"};
  for (int i = 0; i < 100000; ++i) {
    lockprof::MutexLock lock(&mu);
  }
  for (const char* profile : {"mutex", "block", "hold"}) {
    EXPECT_TRUE(
        lockprof::testing::SamplesForLock(lockprof::testing::FetchProfile(profile), "uncontended")
            .empty())
        << profile;
  }
  std::string metrics;
  lockprof::WriteMetrics(&metrics);
  EXPECT_EQ(metrics.find("lock=\"uncontended\""), std::string::npos) << metrics;
}

TEST(MutexTest, StressLosesNoIncrements) {
  lockprof::Mutex mu{"stress"};
  int64_t counter = 0;
  constexpr int kThreads = 8;
  constexpr int kIters = 50000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIters; ++i) {
        std::lock_guard<lockprof::Mutex> g(mu);
        ++counter;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, int64_t{kThreads} * kIters);
}

TEST(MutexTest, StressWithEveryRateAtOne) {
  lockprof::testing::ScopedRates rates(1, 1, 1);
  lockprof::Mutex mu{"stress.all"};
  int64_t counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::lock_guard<lockprof::Mutex> g(mu);
        ++counter;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 80000);
}

// A free lock still marked wanted by a waiter that is not running: one
// descheduled between its mark and its next look, or a parent thread that
// does not exist in a fork()ed child. try_lock() must take it (every call
// failed, in such a child, until a lock() came by), and the lock must work
// normally after. The mark is set in the word directly (state_ is the
// Mutex's first word: checked below); the path to it is a waiter's spin.
TEST(MutexTest, TryLockTakesAFreeLockMarkedWanted) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  constexpr uint32_t kLocked = 1, kWanted = 4;  // mutex.h
  lockprof::Mutex mu{"try_lock.wanted"};
  auto* word = reinterpret_cast<std::atomic<uint32_t>*>(&mu);
  mu.lock();
  ASSERT_EQ(word->load(), kLocked) << "the lock word is not where this test looks";
  word->fetch_or(kWanted);  // A spinner's mark, while this thread holds it.
  mu.unlock();
  ASSERT_EQ(word->load(), kWanted) << "a release keeps the mark";
  ASSERT_TRUE(mu.try_lock());
  EXPECT_EQ(word->load(), kLocked) << "taken, the mark cleared";
  mu.unlock();
  EXPECT_EQ(word->load(), 0u);
  // Held and marked: try_lock still fails.
  mu.lock();
  word->fetch_or(kWanted);
  std::thread([&] { EXPECT_FALSE(mu.try_lock()); }).join();
  mu.unlock();
  ASSERT_TRUE(mu.try_lock());
  mu.unlock();
}

TEST(MutexDeathTest, UnlockOfUnlockedMutexAborts) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::Mutex mu;
  EXPECT_DEATH(mu.unlock(), "lockprof: unlock of unlocked Mutex");
}

}  // namespace
