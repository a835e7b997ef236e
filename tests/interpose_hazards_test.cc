// The pthread interposer linked into this test (lockprof::interpose): the
// agent's own work inside an application's lock call must not change what
// the call does. glibc's lock calls never touch errno, are no cancellation
// points, and take no lock but the one asked for; the interposer's slow paths
// read the clock, name the lock from its object's symbol table and may
// report a stall, and none of that may show.
#include <errno.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include <dlfcn.h>

#include "interpose_waiter.h"
#include "lifecycle_util.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

// The child below starts threads.
LOCKPROF_ALLOW_THREADS_AFTER_FORK()

// Static locks, each used by one test only: the first contended call on each
// is the one that names it (lock_names.h), reading the symbol table.
pthread_mutex_t g_hazards_errno_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_hazards_cond_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_hazards_cond = PTHREAD_COND_INITIALIZER;
pthread_mutex_t g_hazards_cancel_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_hazards_cancel_stall_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_hazards_cancel_hook_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_hazards_dlopen_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_hazards_hook_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_hazards_hook_cond = PTHREAD_COND_INITIALIZER;

// An atfork handler registered before lockprof's (a constructor that runs
// before the library's static initialisation, as an allocator's does) runs
// in the child while lockprof's fork handlers still hold its mutexes, and
// re-initialises its own mutex there, as jemalloc's does.
pthread_mutex_t g_hazards_reinit_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_hazards_fork_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_hazards_busy_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_hazards_busy_b = PTHREAD_MUTEX_INITIALIZER;
// More mutexes than the graph's queue of locks forgotten during a fork()
// holds (kMaxDeferredForgets, 64), re-initialised by the same handler when
// a test asks.
pthread_mutex_t g_hazards_many[80];
pthread_mutex_t g_hazards_many_after = PTHREAD_MUTEX_INITIALIZER;
std::atomic<bool> g_hazards_reinit_many{false};
__attribute__((constructor(101))) void RegisterReinitInChild() {
  pthread_atfork(nullptr, nullptr, [] {
    pthread_mutex_init(&g_hazards_reinit_mu, nullptr);
    if (!g_hazards_reinit_many.load()) return;
    for (pthread_mutex_t& m : g_hazards_many) pthread_mutex_init(&m, nullptr);
  });
}

namespace {

using lockprof::testing::In;
using lockprof::testing::RunInForkedChild;
using lockprof::testing::ScopedRates;
using lockprof::testing::SleepMs;
using lockprof::testing::ThisThreadId;
using lockprof::testing::WaitUntilAsleep;

constexpr int kMark = 7777;  // No errno value.

// Every profile at rate 1, holders tracked and stalls reported past 10 ms:
// every slow path of the interposer runs. errno must come back as it went in,
// from each call: a contended lock that sleeps, its release, a timed lock
// that times out past the stall threshold, a condition wait.
TEST(InterposeHazardsTest, LockCallsLeaveErrnoAlone) {
  ScopedRates rates(1, 1, 1);
  lockprof::SetStallReportThreshold(std::chrono::milliseconds(10));
  ASSERT_EQ(pthread_mutex_lock(&g_hazards_errno_mu), 0);
  std::atomic<pid_t> tid{0};
  std::thread waiter([&] {
    tid = ThisThreadId();
    errno = kMark;
    EXPECT_EQ(pthread_mutex_lock(&g_hazards_errno_mu), 0);
    EXPECT_EQ(errno, kMark) << "after a contended lock";
    EXPECT_EQ(pthread_mutex_unlock(&g_hazards_errno_mu), 0);
    EXPECT_EQ(errno, kMark) << "after its release";
  });
  while (tid.load() == 0) std::this_thread::yield();
  ASSERT_TRUE(WaitUntilAsleep(tid.load()));
  SleepMs(30);  // Past the stall threshold.
  errno = kMark;
  EXPECT_EQ(pthread_mutex_unlock(&g_hazards_errno_mu), 0);
  EXPECT_EQ(errno, kMark) << "after a release that let a waiter in";
  waiter.join();

  ASSERT_EQ(pthread_mutex_lock(&g_hazards_errno_mu), 0);
  std::thread([] {
    const timespec deadline = In(CLOCK_MONOTONIC, 40);
    errno = kMark;
    EXPECT_EQ(pthread_mutex_clocklock(&g_hazards_errno_mu, CLOCK_MONOTONIC, &deadline), ETIMEDOUT);
    EXPECT_EQ(errno, kMark) << "after a timed lock that timed out, reported as a stall";
  }).join();
  EXPECT_EQ(pthread_mutex_unlock(&g_hazards_errno_mu), 0);

  ASSERT_EQ(pthread_mutex_lock(&g_hazards_cond_mu), 0);
  const timespec deadline = In(CLOCK_MONOTONIC, 20);
  errno = kMark;
  EXPECT_EQ(pthread_cond_clockwait(&g_hazards_cond, &g_hazards_cond_mu, CLOCK_MONOTONIC, &deadline),
            ETIMEDOUT);
  EXPECT_EQ(errno, kMark) << "after a condition wait";
  errno = kMark;
  EXPECT_EQ(pthread_mutex_unlock(&g_hazards_cond_mu), 0);
  EXPECT_EQ(errno, kMark);
  lockprof::SetStallReportThreshold(std::chrono::nanoseconds(0));
}

// A thread with a cancellation request pending (deferred) locks `mu`, held
// here for `hold_ms` after it sleeps: the lock call must return, with the
// lock, the unlock call too, and the thread be cancelled at its next
// cancellation point.
void ExpectLockCallsAreNoCancellationPoints(pthread_mutex_t* mu, int hold_ms) {
  ASSERT_EQ(pthread_mutex_lock(mu), 0);
  struct Seen {
    pthread_mutex_t* mu;
    std::atomic<pid_t> tid{0};
    std::atomic<bool> locked{false}, unlocked{false};
  } seen;
  seen.mu = mu;
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, nullptr,
                [](void* arg) -> void* {
                  auto* s = static_cast<Seen*>(arg);
                  s->tid = ThisThreadId();
                  pthread_cancel(pthread_self());  // Pending until a cancellation point.
                  pthread_mutex_lock(s->mu);
                  s->locked = true;
                  pthread_mutex_unlock(s->mu);
                  s->unlocked = true;
                  pthread_testcancel();
                  return nullptr;
                },
                &seen),
            0);
  while (seen.tid.load() == 0) std::this_thread::yield();
  ASSERT_TRUE(WaitUntilAsleep(seen.tid.load()));
  SleepMs(hold_ms);
  EXPECT_EQ(pthread_mutex_unlock(mu), 0);
  void* result = nullptr;
  ASSERT_EQ(pthread_join(thread, &result), 0);
  EXPECT_EQ(result, PTHREAD_CANCELED);
  EXPECT_TRUE(seen.locked) << "cancelled inside pthread_mutex_lock";
  EXPECT_TRUE(seen.unlocked) << "cancelled inside pthread_mutex_unlock";
  // Not left locked by a cancelled call.
  EXPECT_EQ(pthread_mutex_trylock(mu), 0);
  EXPECT_EQ(pthread_mutex_unlock(mu), 0);
}

// A slow-acquire hook may take the very lock it reports (slow_acquire.h).
// A thread that waited for a mutex and then waits on a condition with it
// holds it until glibc lets go inside the wait: the hook of the first wait
// must not run there (it did: a self-deadlock in the hook), but at the
// release after the condition wait. In a child, killed if it hangs.
TEST(InterposeHazardsTest, ASlowAcquireHookNeverRunsWhileAConditionWaitHoldsTheMutex) {
  ScopedRates rates(1, 1, 1);
  const auto child = RunInForkedChild(
      [](int) {
        static std::atomic<int> calls{0};
        lockprof::SetSlowAcquireHook(std::chrono::milliseconds(1),
                                     [](const lockprof::SlowAcquire&) {
                                       pthread_mutex_lock(&g_hazards_hook_mu);
                                       pthread_mutex_unlock(&g_hazards_hook_mu);
                                       calls.fetch_add(1);
                                     });
        pthread_mutex_lock(&g_hazards_hook_mu);
        std::atomic<pid_t> tid{0};
        std::thread waiter([&] {
          tid = ThisThreadId();
          pthread_mutex_lock(&g_hazards_hook_mu);  // Waits: a slow acquisition.
          const timespec soon = In(CLOCK_MONOTONIC, 10);
          pthread_cond_clockwait(&g_hazards_hook_cond, &g_hazards_hook_mu, CLOCK_MONOTONIC, &soon);
          pthread_mutex_unlock(&g_hazards_hook_mu);
        });
        while (tid.load() == 0) std::this_thread::yield();
        if (!WaitUntilAsleep(tid.load())) return 2;
        SleepMs(20);
        pthread_mutex_unlock(&g_hazards_hook_mu);
        waiter.join();
        return calls.load() >= 1 ? 0 : 3;
      },
      30);
  EXPECT_FALSE(child.timed_out) << "the hook ran inside the condition wait, with the mutex held";
  EXPECT_EQ(child.exit_code, 0) << "2: the waiter never slept; 3: the hook never ran";
}

// The first contended lock of a static mutex names it: that opens the
// program's file, and open() is a cancellation point.
TEST(InterposeHazardsTest, LockIsNoCancellationPoint) {
  ScopedRates rates(1, 1, 1);
  ExpectLockCallsAreNoCancellationPoints(&g_hazards_cancel_mu, 0);
}

// A wait past the stall threshold is reported from inside the lock call: a
// line on stderr and the holder's thread name from /proc.
TEST(InterposeHazardsTest, AStallReportIsNoCancellationPoint) {
  ScopedRates rates(1, 1, 1);
  lockprof::SetStallReportThreshold(std::chrono::milliseconds(20));
  ExpectLockCallsAreNoCancellationPoints(&g_hazards_cancel_stall_mu, 100);
  lockprof::SetStallReportThreshold(std::chrono::nanoseconds(0));
}

// The slow-acquire hook runs inside the waiter's unlock call; a hook that
// logs (here: sleeps, a cancellation point as write() is) must not make it
// one.
TEST(InterposeHazardsTest, TheSlowAcquireHookIsNoCancellationPoint) {
  ScopedRates rates(1, 1, 1);
  static std::atomic<int> calls{0};
  lockprof::SetSlowAcquireHook(std::chrono::milliseconds(1), [](const lockprof::SlowAcquire&) {
    calls.fetch_add(1);
    usleep(1);
  });
  ExpectLockCallsAreNoCancellationPoints(&g_hazards_cancel_hook_mu, 20);
  lockprof::SetSlowAcquireHook(std::chrono::nanoseconds(0), nullptr);
  EXPECT_GE(calls.load(), 1) << "the hook was never called: the test tests nothing";
}

// Thread A holds a heap mutex L; thread B dlopen()s a library whose
// constructor waits for L (holding the dynamic loader's lock meanwhile);
// then A waits for a static mutex, which is named then. Without the
// interposer A gets the static mutex, releases L, and B's dlopen returns.
// Naming must not wait for the loader's lock (dladdr does), or A waits for B
// and B for A. In a forked child, which a deadlock would leave hanging.
TEST(InterposeHazardsTest, NamingALockDoesNotWaitForTheDynamicLoader) {
  ScopedRates rates(1, 1, 0);
  const auto child = RunInForkedChild(
      [](int) {
        static pthread_mutex_t* heap_mu = new pthread_mutex_t(PTHREAD_MUTEX_INITIALIZER);
        char address[32];
        std::snprintf(address, sizeof address, "%p", static_cast<void*>(heap_mu));
        setenv("LOCKPROF_TEST_CONSTRUCTOR_MUTEX", address, 1);
        pthread_mutex_lock(&g_hazards_dlopen_mu);
        std::atomic<pid_t> a_tid{0};
        std::atomic<bool> go{false};
        std::thread a([&] {
          pthread_mutex_lock(heap_mu);
          a_tid = ThisThreadId();
          while (!go.load()) std::this_thread::yield();
          pthread_mutex_lock(&g_hazards_dlopen_mu);  // Contended: named now.
          pthread_mutex_unlock(&g_hazards_dlopen_mu);
          pthread_mutex_unlock(heap_mu);
        });
        while (a_tid.load() == 0) std::this_thread::yield();
        std::atomic<pid_t> b_tid{0};
        std::thread b([&] {
          b_tid = ThisThreadId();
          void* h = dlopen(LOCKPROF_CONSTRUCTOR_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
          if (h != nullptr) dlclose(h);
        });
        while (b_tid.load() == 0) std::this_thread::yield();
        // B is in the constructor, waiting for L with the loader's lock.
        if (!WaitUntilAsleep(b_tid.load())) return 2;
        go = true;
        if (!WaitUntilAsleep(a_tid.load())) return 3;
        SleepMs(20);
        pthread_mutex_unlock(&g_hazards_dlopen_mu);
        a.join();
        b.join();
        return 0;
      },
      /*timeout_s=*/20);
  EXPECT_FALSE(child.timed_out) << "deadlock: naming the lock waited for the dynamic loader";
  EXPECT_EQ(child.exit_code, 0);
}

// Takes `first`, then `second`, on a thread of its own.
void TakeInOrderOnAThread(pthread_mutex_t* first, pthread_mutex_t* second) {
  std::thread([=] { lockprof::testing::TakeInOrder(first, second); }).join();
}

// The handler above re-initialises a mutex that is in the lock-order graph,
// in the child, while lockprof's prepare handler still holds the graph's
// mutex there: the init must not wait for it (the child hung inside fork()).
TEST(InterposeHazardsTest, AForkHandlerThatReinitialisesAMutexDoesNotHangTheChild) {
  lockprof::SetLockOrderChecking(lockprof::LockOrderMode::kReport);
  TakeInOrderOnAThread(&g_hazards_fork_a, &g_hazards_reinit_mu);  // Both in the graph now.
  const auto child = RunInForkedChild([](int) { return 0; }, /*timeout_s=*/10);
  lockprof::SetLockOrderChecking(lockprof::LockOrderMode::kOff);
  EXPECT_FALSE(child.timed_out) << "the child hung in fork()";
  EXPECT_EQ(child.exit_code, 0);
}

// 80 mutexes of the graph re-initialised in the child while a fork()
// holds the graph: past the 64 its queue holds, they kept their nodes and
// edges, and the child's new mutexes at those addresses inherited them: the
// opposite order, taken once, was reported (an abort in abort mode). Now the
// graph forgets every lock when the queue overflowed.
TEST(InterposeHazardsTest, LocksForgottenPastTheForksQueueLeaveNoEdges) {
  lockprof::SetLockOrderChecking(lockprof::LockOrderMode::kReport);
  for (pthread_mutex_t& m : g_hazards_many) TakeInOrderOnAThread(&m, &g_hazards_many_after);
  g_hazards_reinit_many = true;
  const auto child = RunInForkedChild(
      [](int) {
        const uint64_t before = lockprof::LockOrderInversions();
        for (pthread_mutex_t& m : g_hazards_many) TakeInOrderOnAThread(&g_hazards_many_after, &m);
        return lockprof::LockOrderInversions() == before ? 0 : 1;
      },
      /*timeout_s=*/20);
  g_hazards_reinit_many = false;
  lockprof::SetLockOrderChecking(lockprof::LockOrderMode::kOff);
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0) << child.output << " (1: a new mutex inherited an old one's edge)";
}

// A destroy that glibc refuses (EBUSY: the mutex is locked) leaves the mutex
// in use, and in the lock-order graph: the inversion taken after it is
// still reported.
TEST(InterposeHazardsTest, ARefusedDestroyKeepsTheMutexsEdges) {
  lockprof::SetLockOrderChecking(lockprof::LockOrderMode::kReport);
  const uint64_t before = lockprof::LockOrderInversions();
  TakeInOrderOnAThread(&g_hazards_busy_a, &g_hazards_busy_b);
  pthread_mutex_lock(&g_hazards_busy_a);
  EXPECT_EQ(pthread_mutex_destroy(&g_hazards_busy_a), EBUSY);
  pthread_mutex_unlock(&g_hazards_busy_a);
  TakeInOrderOnAThread(&g_hazards_busy_b, &g_hazards_busy_a);
  lockprof::SetLockOrderChecking(lockprof::LockOrderMode::kOff);
  EXPECT_EQ(lockprof::LockOrderInversions(), before + 1);
}

}  // namespace
