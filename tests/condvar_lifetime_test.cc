// lockprof::CondVar at the edges of a wait: a waiter whose deadline passes as
// it is notified must neither lose the notification nor touch a CondVar
// that the notifier destroyed right after notify_all (which the standard
// allows: every waiter has been notified), nor one destroyed once a
// waiter's deadline has passed.
#include <gtest/gtest.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "lockprof/primitives/condvar.h"
#include "lockprof/primitives/mutex.h"
#include "test_util.h"

namespace {

using Lock = std::unique_lock<lockprof::Mutex>;

// A clock the test sets: wait_until measures its deadline against it.
struct SetClock {
  using rep = int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<SetClock>;
  static constexpr bool is_steady = false;
  static std::atomic<int64_t> now_ns;
  static time_point now() { return time_point(duration(now_ns.load())); }
};
std::atomic<int64_t> SetClock::now_ns{0};

// The waiter is notified long before its deadline on the monotonic clock,
// but by the time it looks, the caller's clock says the deadline has passed
// (adjusted meanwhile): the wait was notified, and says so. (Reading the
// clock after the wait instead reports a timeout, losing the notification.)
TEST(CondVarLifetimeTest, WaitUntilReportsWhatTheWaitObserved) {
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  SetClock::now_ns = 0;
  bool waiting = false;
  std::cv_status status = std::cv_status::timeout;
  std::thread waiter([&] {
    Lock l(mu);
    waiting = true;
    status = cv.wait_until(l, SetClock::time_point(std::chrono::seconds(30)));
  });
  // Once we hold mu after `waiting`, the waiter has queued and released it.
  for (bool w = false; !w; std::this_thread::yield()) {
    Lock l(mu);
    w = waiting;
  }
  {
    Lock l(mu);
    SetClock::now_ns = std::chrono::nanoseconds(std::chrono::hours(1)).count();
    cv.notify_one();
  }
  waiter.join();
  EXPECT_EQ(status, std::cv_status::no_timeout);
}

// Many waiters whose deadlines pass just as notify_all runs; the notifier
// destroys the CondVar as soon as notify_all returns and overwrites its
// memory. A waiter that timed out must not lock the (destroyed) queue to
// leave it: the memory must still hold the pattern when every waiter has
// returned. Run under ASan, a touch is also a heap-use-after-free.
TEST(CondVarLifetimeTest, TimedOutWaiterDoesNotTouchACondVarDestroyedAfterNotifyAll) {
  constexpr int kWaiters = 12;
  constexpr int kRounds = 300;
  constexpr unsigned char kPattern = 0xA5;
  lockprof::Mutex mu;
  int corrupted_rounds = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto storage = std::make_unique<unsigned char[]>(sizeof(lockprof::CondVar));
    auto* cv = new (storage.get()) lockprof::CondVar;
    int queued = 0;
    std::vector<std::thread> waiters;
    // Deadlines spread over 0-220 us around the notify at ~100 us.
    const auto timeout = [round](int i) {
      return std::chrono::microseconds((round * 7 + i * 20) % 220);
    };
    for (int i = 0; i < kWaiters; ++i) {
      waiters.emplace_back([&, i] {
        Lock l(mu);
        ++queued;
        cv->wait_for(l, timeout(i));
      });
    }
    for (bool all = false; !all; std::this_thread::yield()) {
      Lock l(mu);
      all = queued == kWaiters;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    cv->notify_all();
    cv->~CondVar();
    std::memset(storage.get(), kPattern, sizeof(lockprof::CondVar));
    for (auto& t : waiters) t.join();
    for (size_t b = 0; b < sizeof(lockprof::CondVar); ++b) {
      if (storage[b] != kPattern) {
        ++corrupted_rounds;
        break;
      }
    }
  }
  EXPECT_EQ(corrupted_rounds, 0) << "of " << kRounds << " rounds";
}

#ifndef LOCKPROF_TEST_TSAN  // ThreadSanitizer runs a signal's handler only
                            // at its own later points, not in the wait.
// Holds the thread it interrupts until the test lets it go.
sem_t g_paused;
sem_t g_resume;
void HoldInHandler(int) {
  sem_post(&g_paused);
  while (sem_wait(&g_resume) != 0) {
  }
}

// A waiter whose deadline has passed is no longer blocked, so another
// thread may destroy the CondVar without notifying it (glibc's
// pthread_cond_destroy waits for such a waiter). This one is held in a
// signal handler from before its deadline to well after it, so it has not
// yet claimed its timeout when the destructor runs: the destructor must
// wait for it to leave the queue. The CondVar has a page of its own,
// unmapped as soon as its destructor returns: a waiter that touched it
// after would fault.
TEST(CondVarLifetimeTest, DestroyedPastAWaitersDeadlineWaitsForItWithoutANotify) {
  ASSERT_EQ(sem_init(&g_paused, 0, 0), 0);
  ASSERT_EQ(sem_init(&g_resume, 0, 0), 0);
  struct sigaction hold {
  }, old{};
  hold.sa_handler = HoldInHandler;
  sigemptyset(&hold.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &hold, &old), 0);
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* memory = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  auto* cv = new (memory) lockprof::CondVar;
  lockprof::Mutex mu;
  std::atomic<pid_t> tid{0};
  bool waiting = false;
  std::cv_status status = std::cv_status::no_timeout;
  std::thread waiter([&] {
    tid = lockprof::testing::ThisThreadId();
    Lock l(mu);
    waiting = true;
    status = cv->wait_for(l, std::chrono::milliseconds(200));
  });
  for (bool w = false; !w; std::this_thread::yield()) {
    Lock l(mu);
    w = waiting;
  }
  ASSERT_TRUE(lockprof::testing::WaitUntilAsleep(tid));  // In the futex.
  pthread_kill(waiter.native_handle(), SIGUSR1);
  while (sem_wait(&g_paused) != 0) {
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // Past the deadline.
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    cv->~CondVar();
    munmap(memory, page);
    destroyed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(destroyed) << "the destructor returned with a timed-out waiter still queued";
  sem_post(&g_resume);
  waiter.join();
  destroyer.join();
  EXPECT_EQ(status, std::cv_status::timeout);
  sigaction(SIGUSR1, &old, nullptr);
  sem_destroy(&g_paused);
  sem_destroy(&g_resume);
}
#endif  // LOCKPROF_TEST_TSAN

}  // namespace
