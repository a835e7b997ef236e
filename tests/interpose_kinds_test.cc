// The pthread interposer linked into this test (lockprof::interpose, the
// link-time form): every mutex kind keeps glibc's semantics and return codes,
// and its contention is profiled; fork(), dlopen() and static initialisers.
// Profiles are read in-process with lockprof::WriteProfile.
#include <dlfcn.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "interpose_waiter.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

pthread_mutex_t g_kinds_static_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_kinds_fork_mu = PTHREAD_MUTEX_INITIALIZER;

namespace {

using lockprof::testing::In;
using lockprof::testing::NowNanos;
using lockprof::testing::ProfileDelta;
using lockprof::testing::ScopedRates;
using lockprof::testing::SleepMs;
using lockprof::testing::Waiter;

// Linked with lockprof::interpose; built in the AddressSanitizer build too,
// not in the ThreadSanitizer one (tests/CMakeLists.txt).
class InterposeKindsTest : public ::testing::Test {
 protected:
  ScopedRates rates_{1, 1, 0};
};

// Initialises `m` with these attributes.
void InitMutex(pthread_mutex_t* m, int type, int robust = PTHREAD_MUTEX_STALLED,
               int protocol = PTHREAD_PRIO_NONE) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  EXPECT_EQ(pthread_mutexattr_settype(&a, type), 0);
  EXPECT_EQ(pthread_mutexattr_setrobust(&a, robust), 0);
  EXPECT_EQ(pthread_mutexattr_setprotocol(&a, protocol), 0);
  EXPECT_EQ(pthread_mutex_init(m, &a), 0);
  pthread_mutexattr_destroy(&a);
}

// A waiter's acquisition, released by the same thread (its block event is
// recorded at that release).
int LockUnlock(pthread_mutex_t* m) {
  const int r = pthread_mutex_lock(m);
  return r == 0 ? pthread_mutex_unlock(m) : r;
}

// As LockUnlock, for a mutex that checks its owner (error-checking,
// priority-inheritance): while this thread holds it, another thread's unlock
// must fail with EPERM.
int LockAndRefuseOtherUnlocker(pthread_mutex_t* m) {
  const int r = pthread_mutex_lock(m);
  std::thread([m] { EXPECT_EQ(pthread_mutex_unlock(m), EPERM); }).join();
  return r == 0 ? pthread_mutex_unlock(m) : r;
}

// Holds `m` (already locked by the caller) for `ms` more while `w` waits,
// then unlocks; returns the true charge (the wait up to the unlock).
__attribute__((noinline)) int64_t HoldAndRelease(pthread_mutex_t* m, const Waiter& w, int ms) {
  SleepMs(ms);
  const int64_t truth = NowNanos() - w.start();
  EXPECT_EQ(pthread_mutex_unlock(m), 0);
  asm volatile("");  // Not a tail call: this frame is the one charged.
  return truth;
}

TEST_F(InterposeKindsTest, StaticInitializerMutexLabelledBySymbol) {
  ProfileDelta charged("mutex", 1, "HoldAndRelease", {{"lock", "g_kinds_static_mu"}});
  ProfileDelta waited("block", 1, "", {{"lock", "g_kinds_static_mu"}});
  ASSERT_EQ(pthread_mutex_lock(&g_kinds_static_mu), 0);
  Waiter w([] { return LockUnlock(&g_kinds_static_mu); });
  const int64_t truth = HoldAndRelease(&g_kinds_static_mu, w, 40);
  ASSERT_EQ(w.Join(), 0);
  EXPECT_NEAR(double(charged.Get()), double(truth), 0.1 * double(truth));
  // The wait lasts until the waiter runs again, after the unlock: on a
  // loaded machine, later.
  EXPECT_GE(double(waited.Get()), 0.9 * double(truth));
  EXPECT_LE(double(waited.Get()), 1.1 * double(w.done() - w.start()));
}

TEST_F(InterposeKindsTest, RecursiveMutexKeepsCountsAndIsProfiledAtTheOuterUnlock) {
  pthread_mutex_t m;
  InitMutex(&m, PTHREAD_MUTEX_RECURSIVE);
  ProfileDelta charged("mutex", 1, "HoldAndRelease", {});
  ProfileDelta inner("mutex", 1, "InnerUnlock", {});
  ASSERT_EQ(pthread_mutex_lock(&m), 0);
  ASSERT_EQ(pthread_mutex_lock(&m), 0);
  ASSERT_EQ(pthread_mutex_trylock(&m), 0);  // Count 3.
  std::thread([&] { EXPECT_EQ(pthread_mutex_trylock(&m), EBUSY); }).join();
  Waiter w([&] { return LockUnlock(&m); });
  auto inner_unlock = [&]() __attribute__((noinline)) {
    EXPECT_EQ(pthread_mutex_unlock(&m), 0);
    EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  };
  SleepMs(20);
  inner_unlock();  // Count 1: the waiter still waits.
  const int64_t truth = HoldAndRelease(&m, w, 20);
  ASSERT_EQ(w.Join(), 0);
  EXPECT_EQ(pthread_mutex_unlock(&m), EPERM);  // Not locked any more.
  EXPECT_NEAR(double(charged.Get()), double(truth), 0.1 * double(truth));
  EXPECT_EQ(inner.Get(), 0);
  pthread_mutex_destroy(&m);
}

TEST_F(InterposeKindsTest, ErrorCheckingMutexReturnCodes) {
  pthread_mutex_t m;
  InitMutex(&m, PTHREAD_MUTEX_ERRORCHECK);
  EXPECT_EQ(pthread_mutex_unlock(&m), EPERM);
  ASSERT_EQ(pthread_mutex_lock(&m), 0);
  EXPECT_EQ(pthread_mutex_lock(&m), EDEADLK);
  EXPECT_EQ(pthread_mutex_trylock(&m), EBUSY);
  std::thread([&] { EXPECT_EQ(pthread_mutex_unlock(&m), EPERM); }).join();
  Waiter w([&] { return LockAndRefuseOtherUnlocker(&m); });
  HoldAndRelease(&m, w, 10);
  EXPECT_EQ(w.Join(), 0);
  pthread_mutex_destroy(&m);
}

// A thread locks the robust mutex `m` and exits `hold_ms` later, holding
// it, while this thread waits: this thread gets EOWNERDEAD, makes the mutex
// consistent and unlocks it.
void OwnerDiesWhileThisThreadWaits(pthread_mutex_t* m, int hold_ms) {
  std::atomic<bool> locked{false};
  std::thread owner([&] {
    EXPECT_EQ(pthread_mutex_lock(m), 0);
    locked = true;
    SleepMs(hold_ms);
  });
  while (!locked) SleepMs(1);
  EXPECT_EQ(pthread_mutex_lock(m), EOWNERDEAD);
  owner.join();
  EXPECT_EQ(pthread_mutex_consistent(m), 0);
  EXPECT_EQ(pthread_mutex_unlock(m), 0);
}

TEST_F(InterposeKindsTest, RobustMutexOwnerDeathReturnsEownerdead) {
  pthread_mutex_t m;
  InitMutex(&m, PTHREAD_MUTEX_DEFAULT, PTHREAD_MUTEX_ROBUST);
  // Uncontended: the owner is gone before the lock.
  std::thread([&] { EXPECT_EQ(pthread_mutex_lock(&m), 0); }).join();
  ASSERT_EQ(pthread_mutex_lock(&m), EOWNERDEAD);
  EXPECT_EQ(pthread_mutex_consistent(&m), 0);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  // Contended: the owner dies while this thread waits.
  OwnerDiesWhileThisThreadWaits(&m, 30);
  EXPECT_EQ(pthread_mutex_lock(&m), 0);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  pthread_mutex_destroy(&m);
}

// A robust mutex unlocked without pthread_mutex_consistent after its
// owner died is unrecoverable: every lock answers ENOTRECOVERABLE, at once.
// The interposer's lock tries first, and glibc's trylock left the lock
// word holding the caller's id: the next locker waited for good.
TEST_F(InterposeKindsTest, AnUnrecoverableRobustMutexStaysUnlocked) {
  pthread_mutex_t m;
  InitMutex(&m, PTHREAD_MUTEX_DEFAULT, PTHREAD_MUTEX_ROBUST);
  std::thread([&] { EXPECT_EQ(pthread_mutex_lock(&m), 0); }).join();
  ASSERT_EQ(pthread_mutex_lock(&m), EOWNERDEAD);
  ASSERT_EQ(pthread_mutex_unlock(&m), 0);  // Not made consistent.
  EXPECT_EQ(pthread_mutex_lock(&m), ENOTRECOVERABLE);
  std::thread([&] {
    timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    EXPECT_EQ(pthread_mutex_timedlock(&m, &until), ENOTRECOVERABLE);
    EXPECT_EQ(pthread_mutex_lock(&m), ENOTRECOVERABLE);
  }).join();
  EXPECT_EQ(pthread_mutex_destroy(&m), 0);
}

// An unlock glibc refuses (EPERM: an error-checking mutex unlocked by a
// thread that does not hold it) settles nothing: the holder's release is
// charged all the waiting, and the mutex and block totals still agree.
// Before, the waiting up to the refused unlock was settled, and lost.
ABSL_ATTRIBUTE_NOINLINE void RefusedUnlockHolder(pthread_mutex_t* m, std::atomic<int>* step) {
  ASSERT_EQ(pthread_mutex_lock(m), 0);
  *step = 1;
  while (*step < 2) SleepMs(1);
  SleepMs(100);
  ASSERT_EQ(pthread_mutex_unlock(m), 0);
}

ABSL_ATTRIBUTE_NOINLINE void RefusedUnlockWaiter(pthread_mutex_t* m) {
  ASSERT_EQ(pthread_mutex_lock(m), 0);
  ASSERT_EQ(pthread_mutex_unlock(m), 0);
}

TEST_F(InterposeKindsTest, ARefusedUnlockSettlesNothing) {
  ScopedRates rates(1, 1, ScopedRates::kKeep);
  pthread_mutex_t m;
  InitMutex(&m, PTHREAD_MUTEX_ERRORCHECK, PTHREAD_MUTEX_STALLED);
  ProfileDelta charged("mutex", 1, "RefusedUnlockHolder", {});
  ProfileDelta blocked("block", 1, "RefusedUnlockWaiter", {});
  std::atomic<int> step{0};
  std::thread holder([&] { RefusedUnlockHolder(&m, &step); });
  while (step < 1) SleepMs(1);
  std::thread waiter([&] { RefusedUnlockWaiter(&m); });
  SleepMs(100);  // The waiter sleeps in the lock.
  EXPECT_EQ(pthread_mutex_unlock(&m), EPERM);
  step = 2;
  holder.join();
  waiter.join();
  const int64_t waited = blocked.Get();
  EXPECT_GT(waited, 150'000'000);
  EXPECT_NEAR(double(charged.Get()), double(waited), 0.05 * double(waited));
  pthread_mutex_destroy(&m);
}

TEST_F(InterposeKindsTest, PriorityInheritanceMutexIsProfiled) {
  pthread_mutex_t m;
  InitMutex(&m, PTHREAD_MUTEX_DEFAULT, PTHREAD_MUTEX_STALLED, PTHREAD_PRIO_INHERIT);
  const int r = pthread_mutex_lock(&m);
  if (r == ENOTSUP || r == ENOSYS) GTEST_SKIP() << "no PI futexes here";
  ASSERT_EQ(r, 0);
  std::thread([&] { EXPECT_EQ(pthread_mutex_trylock(&m), EBUSY); }).join();
  ProfileDelta charged("mutex", 1, "HoldAndRelease", {});
  Waiter w([&] { return LockAndRefuseOtherUnlocker(&m); });
  const int64_t truth = HoldAndRelease(&m, w, 30);
  ASSERT_EQ(w.Join(), 0);
  EXPECT_NEAR(double(charged.Get()), double(truth), 0.1 * double(truth));
  pthread_mutex_destroy(&m);
}

__attribute__((noinline)) int TimedWaiter(pthread_mutex_t* m, clockid_t clock, int ms) {
  const timespec t = In(clock, ms);
  const int r = clock == CLOCK_REALTIME ? pthread_mutex_timedlock(m, &t)
                                        : pthread_mutex_clocklock(m, clock, &t);
  asm volatile("");
  return r;
}

TEST_F(InterposeKindsTest, TimedAndClockLocksTimeOutAndValidateLikeGlibc) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  const timespec bad_nsec{0, -1};
  const timespec soon = In(CLOCK_MONOTONIC, 10);
  // A free lock: glibc rejects an unknown clock first, takes it despite a bad deadline.
  EXPECT_EQ(pthread_mutex_clocklock(&m, CLOCK_PROCESS_CPUTIME_ID, &soon), EINVAL);
  EXPECT_EQ(pthread_mutex_timedlock(&m, &bad_nsec), 0);
  ProfileDelta timed_out("block", 1, "TimedWaiter", {});
  std::thread([&] {
    EXPECT_EQ(TimedWaiter(&m, CLOCK_REALTIME, 20), ETIMEDOUT);
    EXPECT_EQ(TimedWaiter(&m, CLOCK_MONOTONIC, 20), ETIMEDOUT);
    EXPECT_EQ(pthread_mutex_timedlock(&m, &bad_nsec), EINVAL);
  }).join();
  EXPECT_GT(timed_out.Get(), 30'000'000);  // Both timed-out waits are blocks too.
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
}

// With the stall watchdog on, a wait sleeps first in glibc's timed lock
// (watched_block.h): every kind still returns what its own call returns,
// when it would, and a wait past the threshold is reported once.
TEST_F(InterposeKindsTest, TheStallWatchdogKeepsEveryKindsReturnCodes) {
  lockprof::SetStallReportThreshold(std::chrono::milliseconds(10));
  const uint64_t stalls0 = lockprof::LockStalls();
  const timespec bad_nsec{0, -1};
  pthread_mutex_t m;
  // Error-checking: relocking is EDEADLK at once, not after the threshold.
  InitMutex(&m, PTHREAD_MUTEX_ERRORCHECK);
  ASSERT_EQ(pthread_mutex_lock(&m), 0);
  EXPECT_EQ(pthread_mutex_lock(&m), EDEADLK);
  // Timed, held by another thread: a bad deadline is EINVAL at once, a
  // deadline past the threshold times out at the deadline, reported once.
  std::thread([&] {
    // EINVAL at once, not after a first sleep of the threshold's length
    // (a second here: clear of any preemption a loaded machine brings).
    lockprof::SetStallReportThreshold(std::chrono::seconds(1));
    int64_t start = NowNanos();
    EXPECT_EQ(pthread_mutex_timedlock(&m, &bad_nsec), EINVAL);
    EXPECT_LT(NowNanos() - start, 100'000'000);
    lockprof::SetStallReportThreshold(std::chrono::milliseconds(10));
    start = NowNanos();
    EXPECT_EQ(TimedWaiter(&m, CLOCK_MONOTONIC, 40), ETIMEDOUT);
    EXPECT_GE(NowNanos() - start, 39'000'000);
  }).join();
  EXPECT_EQ(lockprof::LockStalls(), stalls0 + 1);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
  pthread_mutex_destroy(&m);
  // Robust: the owner dies during the first, timed, sleep (a threshold of
  // seconds for it: a loaded machine may delay the 5 ms death past 10 ms,
  // which would be a stall, rightly reported, and one more in the count).
  InitMutex(&m, PTHREAD_MUTEX_DEFAULT, PTHREAD_MUTEX_ROBUST);
  lockprof::SetStallReportThreshold(std::chrono::seconds(5));
  OwnerDiesWhileThisThreadWaits(&m, 5);
  lockprof::SetStallReportThreshold(std::chrono::milliseconds(10));
  EXPECT_EQ(lockprof::LockStalls(), stalls0 + 1);
  pthread_mutex_destroy(&m);
  // Priority inheritance: a wait past the threshold is reported and still
  // ends holding the lock.
  InitMutex(&m, PTHREAD_MUTEX_DEFAULT, PTHREAD_MUTEX_STALLED, PTHREAD_PRIO_INHERIT);
  const int r = pthread_mutex_lock(&m);
  if (r == 0) {
    Waiter w([&] { return LockAndRefuseOtherUnlocker(&m); });
    HoldAndRelease(&m, w, 40);
    EXPECT_EQ(w.Join(), 0);
    EXPECT_EQ(lockprof::LockStalls(), stalls0 + 2);
  } else {
    EXPECT_TRUE(r == ENOTSUP || r == ENOSYS) << r;  // No PI futexes here.
  }
  pthread_mutex_destroy(&m);
  lockprof::SetStallReportThreshold(std::chrono::nanoseconds(0));
}

__attribute__((noinline)) int CondWaiter(pthread_cond_t* c, pthread_mutex_t* m, bool* ready) {
  int r = 0;
  while (!*ready && r == 0) r = pthread_cond_wait(c, m);
  asm volatile("");
  return r;
}

TEST_F(InterposeKindsTest, ConditionWaitsGoToTheBlockProfile) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  bool ready = false;
  ProfileDelta waited("block", 1, "CondWaiter", {});
  int64_t start = 0, end = 0;
  std::thread waiter([&] {
    pthread_mutex_lock(&m);
    start = NowNanos();
    EXPECT_EQ(CondWaiter(&c, &m, &ready), 0);
    end = NowNanos();
    pthread_mutex_unlock(&m);
  });
  SleepMs(40);
  pthread_mutex_lock(&m);
  ready = true;
  pthread_cond_signal(&c);
  pthread_mutex_unlock(&m);
  waiter.join();
  EXPECT_NEAR(double(waited.Get()), double(end - start), 0.1 * double(end - start));
  pthread_mutex_lock(&m);
  const timespec t = In(CLOCK_REALTIME, 10);
  EXPECT_EQ(pthread_cond_timedwait(&c, &m, &t), ETIMEDOUT);
  const timespec mono = In(CLOCK_MONOTONIC, 10);
  EXPECT_EQ(pthread_cond_clockwait(&c, &m, CLOCK_MONOTONIC, &mono), ETIMEDOUT);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
}

TEST_F(InterposeKindsTest, ForkChildSeesNoPhantomWaits) {
  ASSERT_EQ(pthread_mutex_lock(&g_kinds_fork_mu), 0);
  Waiter w([] { return LockUnlock(&g_kinds_fork_mu); });
  const pid_t pid = fork();
  if (pid == 0) {
    // The waiter is the parent's thread: unlocking here must charge nothing.
    ProfileDelta charged("mutex", 1, "", {{"lock", "g_kinds_fork_mu"}});
    SleepMs(30);
    bool ok = pthread_mutex_unlock(&g_kinds_fork_mu) == 0;
    ok &= pthread_mutex_lock(&g_kinds_fork_mu) == 0;
    ok &= pthread_mutex_unlock(&g_kinds_fork_mu) == 0;
    _exit(ok && charged.Get() == 0 ? 0 : 1);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ProfileDelta charged("mutex", 1, "", {{"lock", "g_kinds_fork_mu"}});
  HoldAndRelease(&g_kinds_fork_mu, w, 1);
  ASSERT_EQ(w.Join(), 0);
  EXPECT_GT(charged.Get(), 30'000'000);  // The parent's waiter is charged here.
}

TEST_F(InterposeKindsTest, DlopenedLibraryLocksAreProfiled) {
  ProfileDelta charged("mutex", 1, "PluginContend", {{"lock", "g_plugin_mu"}});
  void* h = dlopen(LOCKPROF_INTERPOSE_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  auto contend = reinterpret_cast<int (*)(int)>(dlsym(h, "PluginContend"));
  ASSERT_NE(contend, nullptr);
  // The plugin's waiter thread may start late on a loaded machine: a long
  // hold, a loose bound (the ground truth is interpose_test's).
  ASSERT_EQ(contend(200), 0);
  // Read while the library is loaded: its pcs are symbolized from it.
  EXPECT_GT(charged.Get(), 50'000'000);
  EXPECT_EQ(dlclose(h), 0);
  // Locking goes on after the library is gone.
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  EXPECT_EQ(pthread_mutex_lock(&m), 0);
  EXPECT_EQ(pthread_mutex_unlock(&m), 0);
}

}  // namespace
