// ThisThreadLockWait() against ground truth: a waiter blocks behind a holder
// that keeps the lock for a known time. A lock wait ends at the release that
// let the waiter in (the waiter table's "Where a wait ends"), so its truth is
// from the waiter's call to lock() to a moment inside the holder's unlock(); a
// condition wait ends when the woken waiter runs again, so its truth lies
// between the span from the waiter's call to wait() to the notify and the
// waiter's own measurement around wait() (which adds the re-lock and, under
// TSan, milliseconds of the first event's recording). The counters must agree within 5%
// (they start after the brief spin, so they may only fall short), count each
// wait once, whatever the profiling rates, keep lock waits apart from
// condition waits, and count nothing for uncontended locking or for another
// thread's waits.
#include "lockprof/agent/thread_lock_wait.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::ThisThreadLockWait;
using lockprof::ThreadLockWait;
using lockprof::testing::NowNanos;
using lockprof::testing::ScopedRates;
using lockprof::testing::ThisThreadId;
using lockprof::testing::WaitUntilAsleep;

constexpr int kRounds = 5;
constexpr auto kHold = std::chrono::milliseconds(30);

// What the waiter's counters said, what it measured around its waits, and
// the time from each call until the holder called its release, and until
// that returned (after recording its own events).
struct Observed {
  ThreadLockWait counted;
  int64_t measured_ns = 0;
  int64_t until_releasing_ns = 0;
  int64_t until_released_ns = 0;
};

// kRounds times: this thread takes the lock with `hold`, a new thread calls
// `wait` (which blocks on the lock, then releases it), and once that thread
// sleeps this one keeps the lock kHold longer, then calls `release`.
Observed WaitBehindHolder(const std::function<void()>& hold, const std::function<void()>& release,
                          const std::function<void()>& wait) {
  Observed seen;
  const ThreadLockWait holder_before = ThisThreadLockWait();
  for (int round = 0; round < kRounds; ++round) {
    hold();
    std::atomic<pid_t> tid{0};
    int64_t start = 0;  // Written before the waiter sleeps, read after the join.
    std::thread waiter([&] {
      const ThreadLockWait before = ThisThreadLockWait();
      tid = ThisThreadId();
      start = NowNanos();
      wait();
      const int64_t waited = NowNanos() - start;
      const ThreadLockWait delta = ThisThreadLockWait() - before;
      seen.measured_ns += waited;
      seen.counted.lock_wait_ns += delta.lock_wait_ns;
      seen.counted.lock_waits += delta.lock_waits;
      seen.counted.condition_wait_ns += delta.condition_wait_ns;
      seen.counted.condition_waits += delta.condition_waits;
    });
    while (tid.load() == 0) std::this_thread::yield();
    EXPECT_TRUE(WaitUntilAsleep(tid.load())) << "the waiter never slept";
    std::this_thread::sleep_for(kHold);
    const int64_t releasing = NowNanos();
    release();
    const int64_t released = NowNanos();
    waiter.join();
    seen.until_releasing_ns += releasing - start;
    seen.until_released_ns += released - start;
  }
  const ThreadLockWait holder = ThisThreadLockWait() - holder_before;
  EXPECT_EQ(holder.lock_waits, 0) << "the holder never waited; another thread's waits leaked";
  EXPECT_EQ(holder.lock_wait_ns, 0);
  return seen;
}

// One lock wait per round, its total between the times until the releases
// began (less 5%) and until they returned, and at least kRounds * kHold (the
// holder kept the lock that long after the waiter slept).
void ExpectLockWaits(const Observed& seen) {
  EXPECT_EQ(seen.counted.lock_waits, kRounds);
  EXPECT_EQ(seen.counted.condition_waits, 0);
  EXPECT_EQ(seen.counted.condition_wait_ns, 0);
  EXPECT_LE(seen.counted.lock_wait_ns, seen.until_released_ns);
  EXPECT_GE(seen.counted.lock_wait_ns, 0.95 * double(seen.until_releasing_ns))
      << "counted " << seen.counted.lock_wait_ns << " ns of " << seen.until_releasing_ns
      << " until the releases";
  EXPECT_GE(seen.counted.lock_wait_ns, kRounds * std::chrono::nanoseconds(kHold).count());
}

Observed MutexWaits() {
  lockprof::Mutex mu{"thread_wait.mutex"};
  return WaitBehindHolder([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.lock(); },
                          [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.unlock(); },
                          [&] {
                            mu.lock();
                            mu.unlock();
                          });
}

TEST(ThreadLockWaitTest, MutexWaitsAreCountedWithProfilingOff) {
  ScopedRates off(0, 0, 0);
  ExpectLockWaits(MutexWaits());
}

TEST(ThreadLockWaitTest, MutexWaitsAreCountedWithEveryRateAtOne) {
  ScopedRates all(1, 1, 1);
  ExpectLockWaits(MutexWaits());
}

TEST(ThreadLockWaitTest, SharedMutexWaitsAreCountedInEveryMode) {
  ScopedRates defaults;
  lockprof::SharedMutex mu{"thread_wait.shared"};
  const std::function<void()> write_lock = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.lock(); };
  const std::function<void()> write_unlock = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.unlock(); };
  const std::function<void()> read_lock = [&]()
                                              ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.lock_shared(); };
  const std::function<void()> read_unlock = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    mu.unlock_shared();
  };
  const std::function<void()> write_round = [&] {
    mu.lock();
    mu.unlock();
  };
  const std::function<void()> read_round = [&] {
    mu.lock_shared();
    mu.unlock_shared();
  };
  {
    SCOPED_TRACE("writer behind a writer");
    ExpectLockWaits(WaitBehindHolder(write_lock, write_unlock, write_round));
  }
  {
    SCOPED_TRACE("reader behind a writer");
    ExpectLockWaits(WaitBehindHolder(write_lock, write_unlock, read_round));
  }
  {
    SCOPED_TRACE("writer behind a reader");
    ExpectLockWaits(WaitBehindHolder(read_lock, read_unlock, write_round));
  }
}

TEST(ThreadLockWaitTest, ConditionWaitsAreCountedApart) {
  lockprof::Mutex mu{"thread_wait.cv_mutex"};
  lockprof::CondVar cv;
  bool ready = false;
  // The notifier does not hold the mutex as the waiter wakes, so the
  // waiter's re-lock does not wait and the round is one condition wait.
  const Observed seen = WaitBehindHolder([] {},
                                         [&] {
                                           {
                                             std::lock_guard<lockprof::Mutex> l(mu);
                                             ready = true;
                                           }
                                           cv.notify_one();
                                         },
                                         [&] {
                                           std::unique_lock<lockprof::Mutex> l(mu);
                                           cv.wait(l, [&] { return ready; });
                                           ready = false;
                                         });
  EXPECT_EQ(seen.counted.condition_waits, kRounds);
  EXPECT_LE(seen.counted.condition_wait_ns, seen.measured_ns);
  EXPECT_GE(seen.counted.condition_wait_ns, 0.95 * double(seen.until_releasing_ns));
  EXPECT_LE(seen.counted.lock_waits, kRounds) << "at most a brief re-lock per round";
  EXPECT_LT(seen.counted.lock_wait_ns, 0.05 * double(seen.measured_ns));
}

TEST(ThreadLockWaitTest, UncontendedLockingCountsNothing) {
  ScopedRates all(1, 1, 1);
  lockprof::Mutex mu{"thread_wait.uncontended"};
  lockprof::SharedMutex rw{"thread_wait.uncontended_rw"};
  // Another thread exists, so the locks run as in a multi-threaded service.
  std::thread idle([] {});
  const ThreadLockWait before = ThisThreadLockWait();
  for (int i = 0; i < 10000; ++i) {
    mu.lock();
    mu.unlock();
    rw.lock_shared();
    rw.unlock_shared();
    rw.lock();
    rw.unlock();
  }
  const ThreadLockWait delta = ThisThreadLockWait() - before;
  idle.join();
  EXPECT_EQ(delta.lock_waits, 0);
  EXPECT_EQ(delta.lock_wait_ns, 0);
  EXPECT_EQ(delta.condition_waits, 0);
}

}  // namespace
