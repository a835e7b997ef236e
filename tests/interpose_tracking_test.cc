// Holder tracking and lock-order checking for pthread locks, through the
// interposer linked into this test (lockprof::interpose): which locks each
// thread holds (recursive holds, condition waits, another thread's failed
// unlock), and which acquisitions make lock-order edges (global locks do;
// try functions and heap locks do not). Mutexes unlocked by another thread:
// interpose_handoff_test.
#include <errno.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "interpose_waiter.h"
#include "lock_order_fixture.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/agent/sampling.h"
#include "lockprof/server/admin_handler.h"
#include "test_util.h"

pthread_mutex_t g_held_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_cond_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_inv_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_inv_b = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_try_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_try_b = PTHREAD_MUTEX_INITIALIZER;
pthread_rwlock_t g_table_rw = PTHREAD_RWLOCK_INITIALIZER;
pthread_mutex_t g_relocked = PTHREAD_MUTEX_INITIALIZER;

namespace lockprof {
namespace {

// Holders tracked, lock order checked in kReport, for the test only.
class InterposeTrackingTest : public testing::HeldTrackingFixture {
 protected:
  // A second lock() of a normal mutex by its holder waits for good (glibc
  // lets another thread unlock it, which POSIX leaves undefined): reported as
  // a self-deadlock before the thread sleeps, for a heap mutex too, whatever
  // the thread's lock record says. Here the test's own thread unlocks it
  // once the holder sleeps in its second lock() (past the check), so that
  // the holder goes on.
  static void RelockThenWaitForRescue(pthread_mutex_t* m) {
    std::atomic<pid_t> tid{0};
    std::thread holder([&] {
      ASSERT_EQ(pthread_mutex_lock(m), 0);
      tid = testing::ThisThreadId();
      ASSERT_EQ(pthread_mutex_lock(m), 0);  // Sleeps until the rescue.
      pthread_mutex_unlock(m);
    });
    EXPECT_TRUE(
        testing::WaitFor([&] { return tid.load() != 0 && testing::IsAsleep(tid.load()); }, 10000));
    ASSERT_EQ(pthread_mutex_unlock(m), 0);  // The rescue.
    holder.join();
  }
};

// A mutex of `type` (PTHREAD_MUTEX_RECURSIVE, ...).
void InitMutex(pthread_mutex_t* m, int type) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, type);
  pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
}

// The locks thread `tid` holds now, oldest first, as /debug/lockprof/held
// reads them.
std::vector<agent::LockView> HeldBy(pid_t tid) {
  for (const agent::ThreadLocksView& t : agent::SnapshotThreadLocks()) {
    if (t.tid == tid) return t.held;
  }
  return {};
}
std::vector<agent::LockView> HeldByMe() { return HeldBy(testing::ThisThreadId()); }

TEST_F(InterposeTrackingTest, GlobalAndHeapLocksAreListedWithTheirNamesAndStacks) {
  auto heap = std::make_unique<std::mutex>();
  ASSERT_EQ(pthread_mutex_lock(&g_held_mu), 0);
  heap->lock();
  const std::vector<agent::LockView> held = HeldByMe();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].lock, &g_held_mu);
  EXPECT_STREQ(held[0].name, "g_held_mu");
  EXPECT_EQ(held[1].lock, heap.get());
  EXPECT_STREQ(held[1].name, "(unnamed)");
  EXPECT_GT(held[0].since, 0);
  EXPECT_GT(held[0].depth, 0);  // Since when and where (SetHeldLockTracking).
  heap->unlock();
  EXPECT_EQ(pthread_mutex_unlock(&g_held_mu), 0);
  EXPECT_TRUE(HeldByMe().empty());
}

TEST_F(InterposeTrackingTest, RecursiveMutexIsOneHoldUntilItsOuterUnlock) {
  pthread_mutex_t m;
  InitMutex(&m, PTHREAD_MUTEX_RECURSIVE);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(pthread_mutex_lock(&m), 0);
  EXPECT_EQ(HeldByMe().size(), 1u);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  EXPECT_EQ(HeldByMe().size(), 1u);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  EXPECT_TRUE(HeldByMe().empty());
  pthread_mutex_destroy(&m);
}

TEST_F(InterposeTrackingTest, AnotherThreadsFailedUnlockLeavesTheHolderListed) {
  pthread_mutex_t m;
  InitMutex(&m, PTHREAD_MUTEX_ERRORCHECK);
  ASSERT_EQ(pthread_mutex_lock(&m), 0);
  OnThread([&] { EXPECT_EQ(pthread_mutex_unlock(&m), EPERM); });
  ASSERT_EQ(HeldByMe().size(), 1u);
  EXPECT_EQ(HeldByMe()[0].lock, &m);
  EXPECT_EQ(pthread_mutex_lock(&m), EDEADLK);
  EXPECT_EQ(HeldByMe().size(), 1u);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  EXPECT_TRUE(HeldByMe().empty());
  pthread_mutex_destroy(&m);
}

TEST_F(InterposeTrackingTest, AConditionWaitLetsGoOfItsMutexAndTakesItBack) {
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  std::atomic<pid_t> tid{0};
  bool ready = false;
  size_t held_after = 0;
  std::thread waiter([&] {
    pthread_mutex_lock(&g_cond_mu);
    tid = testing::ThisThreadId();
    while (!ready) pthread_cond_wait(&cond, &g_cond_mu);
    held_after = HeldByMe().size();
    pthread_mutex_unlock(&g_cond_mu);
  });
  while (tid.load() == 0 || !testing::IsAsleep(tid.load())) std::this_thread::yield();
  EXPECT_TRUE(HeldBy(tid.load()).empty());  // Asleep in the wait: holds nothing.
  pthread_mutex_lock(&g_cond_mu);
  ready = true;
  pthread_cond_signal(&cond);
  pthread_mutex_unlock(&g_cond_mu);
  waiter.join();
  EXPECT_EQ(held_after, 1u);
  pthread_cond_destroy(&cond);
}

// A condition wait that never lets go of its mutex leaves it held: glibc
// refuses a bad deadline (EINVAL) before it touches the mutex, and a
// recursive mutex held twice stays held through the wait (glibc takes one
// level off). The tracking forgot it, and with it the lock-order edges out of it.
TEST_F(InterposeTrackingTest, AConditionWaitThatKeepsItsMutexKeepsItHeld) {
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  ASSERT_EQ(pthread_mutex_lock(&g_cond_mu), 0);
  const timespec bad_nsec{0, 1'000'000'000};
  EXPECT_EQ(pthread_cond_timedwait(&cond, &g_cond_mu, &bad_nsec), EINVAL);
  EXPECT_EQ(HeldByMe().size(), 1u) << "after a refused timedwait";
  const timespec soon = testing::In(CLOCK_MONOTONIC, 1);
  EXPECT_EQ(pthread_cond_clockwait(&cond, &g_cond_mu, CLOCK_PROCESS_CPUTIME_ID, &soon), EINVAL);
  EXPECT_EQ(pthread_cond_clockwait(&cond, &g_cond_mu, CLOCK_MONOTONIC, &bad_nsec), EINVAL);
  EXPECT_EQ(HeldByMe().size(), 1u) << "after a refused clockwait";
  EXPECT_EQ(pthread_mutex_unlock(&g_cond_mu), 0);
  EXPECT_TRUE(HeldByMe().empty());

  pthread_mutex_t m;
  InitMutex(&m, PTHREAD_MUTEX_RECURSIVE);
  ASSERT_EQ(pthread_mutex_lock(&m), 0);
  ASSERT_EQ(pthread_mutex_lock(&m), 0);
  ASSERT_EQ(HeldByMe().size(), 1u);  // One hold: the inner one is not a section of its own.
  const timespec later = testing::In(CLOCK_MONOTONIC, 5);
  EXPECT_EQ(pthread_cond_clockwait(&cond, &m, CLOCK_MONOTONIC, &later), ETIMEDOUT);
  EXPECT_EQ(HeldByMe().size(), 1u) << "a recursive mutex held twice, after a wait";
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  EXPECT_EQ(HeldByMe().size(), 1u);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  EXPECT_TRUE(HeldByMe().empty());
  pthread_mutex_destroy(&m);
  pthread_cond_destroy(&cond);
}

TEST_F(InterposeTrackingTest, ReadLockTakenTwiceIsTwoHolds) {
  ASSERT_EQ(pthread_rwlock_rdlock(&g_table_rw), 0);
  ASSERT_EQ(pthread_rwlock_tryrdlock(&g_table_rw), 0);
  const std::vector<agent::LockView> held = HeldByMe();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].mode, agent::LockMode::kRead);
  EXPECT_FALSE(held[0].tried);
  EXPECT_TRUE(held[1].tried);
  EXPECT_EQ(pthread_rwlock_unlock(&g_table_rw), 0);
  EXPECT_EQ(HeldByMe().size(), 1u);
  EXPECT_EQ(pthread_rwlock_unlock(&g_table_rw), 0);
  EXPECT_TRUE(HeldByMe().empty());
  EXPECT_EQ(hook_calls.load(), 0);  // The same lock twice is no edge.
}

void TakeInOrder(pthread_mutex_t* first, pthread_mutex_t* second) {
  pthread_mutex_lock(first);
  pthread_mutex_lock(second);
  pthread_mutex_unlock(second);
  pthread_mutex_unlock(first);
}

TEST_F(InterposeTrackingTest, InversionOfGlobalPthreadMutexesIsReportedOnce) {
  OnThread([] { TakeInOrder(&g_inv_a, &g_inv_b); });
  EXPECT_EQ(hook_calls.load(), 0);
  OnThread([] { TakeInOrder(&g_inv_b, &g_inv_a); });
  ASSERT_EQ(hook_calls.load(), 1);
  EXPECT_EQ(hook_edges, (std::vector<std::string>{"g_inv_b->g_inv_a", "g_inv_a->g_inv_b"}));
  OnThread([] { TakeInOrder(&g_inv_b, &g_inv_a); });
  EXPECT_EQ(hook_calls.load(), 1);
}

TEST_F(InterposeTrackingTest, TryLockMakesNoEdgeIntoItsLock) {
  OnThread([] { TakeInOrder(&g_try_a, &g_try_b); });
  OnThread([] {
    pthread_mutex_lock(&g_try_b);
    ASSERT_EQ(pthread_mutex_trylock(&g_try_a), 0);
    pthread_mutex_unlock(&g_try_a);
    pthread_mutex_unlock(&g_try_b);
  });
  EXPECT_EQ(hook_calls.load(), 0);
}

// Their memory may become another lock's without a call the interposer
// sees, so heap locks make no edges, from or to anything.
TEST_F(InterposeTrackingTest, HeapLocksMakeNoEdges) {
  auto a = std::make_unique<pthread_mutex_t>();
  auto b = std::make_unique<pthread_mutex_t>();
  pthread_mutex_init(a.get(), nullptr);
  pthread_mutex_init(b.get(), nullptr);
  OnThread([&] { TakeInOrder(a.get(), b.get()); });
  OnThread([&] { TakeInOrder(b.get(), a.get()); });
  OnThread([&] { TakeInOrder(&g_held_mu, a.get()); });
  OnThread([&] { TakeInOrder(a.get(), &g_held_mu); });
  EXPECT_EQ(hook_calls.load(), 0);
  pthread_mutex_destroy(a.get());
  pthread_mutex_destroy(b.get());
}

TEST_F(InterposeTrackingTest, ASecondLockOfAHeldNormalMutexIsASelfDeadlock) {
  SetHeldLockTracking(false);  // Lock-order checking alone finds it.
  RelockThenWaitForRescue(&g_relocked);
  ASSERT_EQ(hook_calls.load(), 1);
  EXPECT_EQ(hook_edges, (std::vector<std::string>{"g_relocked->g_relocked"}));
  EXPECT_NE(LockOrderReport().find("g_relocked"), std::string::npos);

  pthread_mutex_t heap;
  InitMutex(&heap, PTHREAD_MUTEX_ADAPTIVE_NP);
  RelockThenWaitForRescue(&heap);
  EXPECT_EQ(hook_calls.load(), 2);
  pthread_mutex_destroy(&heap);

  // Once per lock: a program that relocks and has another thread unlock (a
  // mutex used as a semaphore) is not reported at every wait.
  RelockThenWaitForRescue(&g_relocked);
  EXPECT_EQ(hook_calls.load(), 2);
}

// A mutex shared between processes: its __owner may be another process's
// thread of the same id (in another PID namespace), so it is not taken for
// this thread's.
TEST_F(InterposeTrackingTest, ASharedMutexIsNotJudgedByItsOwnersId) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutex_t shared;
  pthread_mutex_init(&shared, &a);
  pthread_mutexattr_destroy(&a);
  RelockThenWaitForRescue(&shared);
  EXPECT_EQ(hook_calls.load(), 0);
  pthread_mutex_destroy(&shared);
}

// Kinds whose second lock does not wait for good: recursive (granted),
// error-checking (EDEADLK), and a timed lock (ETIMEDOUT).
TEST_F(InterposeTrackingTest, ASecondLockThatEndsIsNoSelfDeadlock) {
  pthread_mutex_t recursive, checked;
  InitMutex(&recursive, PTHREAD_MUTEX_RECURSIVE);
  InitMutex(&checked, PTHREAD_MUTEX_ERRORCHECK);
  OnThread([&] {
    ASSERT_EQ(pthread_mutex_lock(&recursive), 0);
    EXPECT_EQ(pthread_mutex_lock(&recursive), 0);
    pthread_mutex_unlock(&recursive);
    pthread_mutex_unlock(&recursive);
    ASSERT_EQ(pthread_mutex_lock(&checked), 0);
    EXPECT_EQ(pthread_mutex_lock(&checked), EDEADLK);
    pthread_mutex_unlock(&checked);
    ASSERT_EQ(pthread_mutex_lock(&g_relocked), 0);
    timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 50000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec += 1;
      until.tv_nsec -= 1000000000;
    }
    EXPECT_EQ(pthread_mutex_timedlock(&g_relocked, &until), ETIMEDOUT);
    pthread_mutex_unlock(&g_relocked);
  });
  EXPECT_EQ(hook_calls.load(), 0);
  pthread_mutex_destroy(&recursive);
  pthread_mutex_destroy(&checked);
}

// A mutex destroyed, and another made at its address (as an allocator
// hands a freed block out again; here the same storage, so that every
// allocator, AddressSanitizer's quarantine included, reuses it) and
// relocked at the same call site: a self-deadlock of its own, reported (the
// first one's report hid it: they were told apart by address and stack
// only).
TEST_F(InterposeTrackingTest, AnotherMutexAtTheSameAddressIsReported) {
  SetHeldLockTracking(false);
  alignas(pthread_mutex_t) static unsigned char storage[sizeof(pthread_mutex_t)];
  for (int i = 0; i < 2; ++i) {
    auto* m = new (storage) pthread_mutex_t;
    InitMutex(m, PTHREAD_MUTEX_NORMAL);
    RelockThenWaitForRescue(m);
    pthread_mutex_destroy(m);
  }
  EXPECT_EQ(hook_calls.load(), 2);
}

// The embedded handler answers on the host's own thread: the locks lockprof
// takes there (the symbolizer's and the loader's, std::mutex: interposed
// pthread locks here) are lockprof's own, and no profile shows them (nor
// does lock tracking see them: lock-order checking would have made edges
// of them). Every hold is sampled at hold rate 1, so before, each of those
// locks was in the hold profile, at the handler's stack.
TEST(InterposeOwnLocksTest, TheEmbeddedHandlerOnAHostThreadRecordsNoLockOfLockprofs) {
  const int previous = SetHoldProfileRate(1);
  std::thread host([] {  // A fresh thread: it samples at the new rate.
    AdminRequest req;    // Symbolized outside the profile builder.
    req.path = "/debug/pprof/symbol";
    char address[32];
    snprintf(address, sizeof address, "%p", reinterpret_cast<void*>(&SetHoldProfileRate));
    req.query = address;
    const AdminResponse r = HandleAdminRequest(req);
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("SetHoldProfileRate"), std::string::npos) << r.body;
  });
  host.join();
  SetHoldProfileRate(previous);
  const auto hold = testing::FetchProfile("hold");
  for (const auto& sample : hold.sample()) {
    for (const std::string& f : testing::StackFunctions(hold, sample)) {
      EXPECT_EQ(f.find("lockprof::agent::Symbolizer"), std::string::npos)
          << "a hold of lockprof's own lock, taken on the host's thread";
    }
  }
}

}  // namespace
}  // namespace lockprof
