// The pthread interposer's rwlocks (lockprof::interpose linked in): modes
// labelled, glibc's return codes kept, and each release charged the waiting
// of the threads blocked on that lock: a writer's release for the readers and
// writers waiting for it, a reader's for the writer waiting for the readers
// to leave. Which releases must settle is read from glibc's lock word
// (primitives/interpose/rwlock_word.h).
#include <errno.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <thread>

#include "interpose_waiter.h"
#include "lockprof/lockprof.h"
#include "lockprof/primitives/interpose/rwlock_word.h"
#include "test_util.h"

namespace {

using lockprof::testing::In;
using lockprof::testing::ProfileDelta;
using lockprof::testing::ScopedRates;
using lockprof::testing::SleepMs;
using lockprof::testing::Waiter;

// Not in the ThreadSanitizer build (tests/CMakeLists.txt).
class InterposeRwlockTest : public ::testing::Test {
 protected:
  ScopedRates rates_{1, 1, 0};
};

__attribute__((noinline)) int RwHolderRelease(pthread_rwlock_t* rw, int ms) {
  SleepMs(ms);
  const int r = pthread_rwlock_unlock(rw);
  asm volatile("");
  return r;
}

int LockUnlock(pthread_rwlock_t* rw, bool write) {
  const int r = write ? pthread_rwlock_wrlock(rw) : pthread_rwlock_rdlock(rw);
  return r == 0 ? pthread_rwlock_unlock(rw) : r;
}

TEST_F(InterposeRwlockTest, GlibcLockWordIsKnown) {
  // Debian 12's glibc keeps the state rwlock_word.h reads; were it not, every
  // release would settle (correct, slower), and this test would say so.
  EXPECT_TRUE(lockprof::interpose::RwlockWordKnown());
}

__attribute__((noinline)) void TimedAndTriedFailures(pthread_rwlock_t* rw) {
  EXPECT_EQ(pthread_rwlock_tryrdlock(rw), EBUSY);
  EXPECT_EQ(pthread_rwlock_trywrlock(rw), EBUSY);
  const timespec t = In(CLOCK_REALTIME, 10);
  EXPECT_EQ(pthread_rwlock_timedrdlock(rw, &t), ETIMEDOUT);
  const timespec m = In(CLOCK_MONOTONIC, 10);
  EXPECT_EQ(pthread_rwlock_clockwrlock(rw, CLOCK_MONOTONIC, &m), ETIMEDOUT);
  EXPECT_EQ(pthread_rwlock_clockrdlock(rw, CLOCK_PROCESS_CPUTIME_ID, &m), EINVAL);
}

TEST_F(InterposeRwlockTest, ModesLabelledAndReturnCodesKept) {
  pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
  ProfileDelta readers("mutex", 1, "RwHolderRelease", {{"mode", "read"}});
  ProfileDelta writers("mutex", 1, "RwHolderRelease", {{"mode", "write"}});
  ProfileDelta read_waits("block", 1, "", {{"mode", "read"}});
  ASSERT_EQ(pthread_rwlock_wrlock(&rw), 0);
  EXPECT_EQ(pthread_rwlock_wrlock(&rw), EDEADLK);
  std::thread([&] { TimedAndTriedFailures(&rw); }).join();
  Waiter reader([&] { return LockUnlock(&rw, false); });
  Waiter writer([&] { return LockUnlock(&rw, true); });
  ASSERT_EQ(RwHolderRelease(&rw, 30), 0);
  EXPECT_EQ(reader.Join(), 0);
  EXPECT_EQ(writer.Join(), 0);
  EXPECT_GT(readers.Get(), 25'000'000);
  EXPECT_GT(writers.Get(), 25'000'000);
  EXPECT_GT(read_waits.Get(), 25'000'000);
}

// A writer waits for two readers: each reader's release, in a read phase, is
// charged the writer's waiting since the one before (about 20 ms each).
TEST_F(InterposeRwlockTest, ReadersReleasesAreChargedTheWaitingWriter) {
  pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
  ProfileDelta charged("mutex", 1, "RwHolderRelease", {{"mode", "write"}});
  ASSERT_EQ(pthread_rwlock_rdlock(&rw), 0);
  std::atomic<int> stage{0};
  std::thread other([&] {
    EXPECT_EQ(pthread_rwlock_rdlock(&rw), 0);
    stage = 1;
    while (stage.load() != 2) SleepMs(1);
    EXPECT_EQ(RwHolderRelease(&rw, 20), 0);
  });
  while (stage.load() != 1) SleepMs(1);
  Waiter writer([&] { return LockUnlock(&rw, true); });
  stage = 2;
  ASSERT_EQ(RwHolderRelease(&rw, 40), 0);  // The last reader out.
  other.join();
  EXPECT_EQ(writer.Join(), 0);
  EXPECT_GT(charged.Get(), 35'000'000);
}

// A writer waits for the writer holding the lock, nobody else: the release
// (a write phase with no reader counted) still settles it.
TEST_F(InterposeRwlockTest, WritersReleaseIsChargedTheWaitingWriter) {
  pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
  ProfileDelta charged("mutex", 1, "RwHolderRelease", {{"mode", "write"}});
  ASSERT_EQ(pthread_rwlock_wrlock(&rw), 0);
  Waiter writer([&] { return LockUnlock(&rw, true); });
  ASSERT_EQ(RwHolderRelease(&rw, 30), 0);
  EXPECT_EQ(writer.Join(), 0);
  EXPECT_GT(charged.Get(), 25'000'000);
}

}  // namespace
