// Mutexes unlocked by a thread that did not lock them (glibc allows it for
// a normal or adaptive mutex: a mutex used as a semaphore), through the
// interposer linked into this test (lockprof::interpose): the hold ends for
// the thread that took it, in its lock record too, without lockprof's ever
// reading the mutex again (the program may have unmapped it).
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "interpose_waiter.h"
#include "lock_order_fixture.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "test_util.h"

pthread_mutex_t g_handed_off = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_after_hand_off = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_unlocker_own = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_taken_again = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_after_taken_again = PTHREAD_MUTEX_INITIALIZER;

namespace lockprof {
namespace {

// Holders tracked, lock order checked in kReport, for the test only.
using InterposeHandOffTest = testing::HeldTrackingFixture;
using testing::TakeInOrder;

// The locks thread `tid` holds now, oldest first, as /debug/lockprof/held
// reads them.
std::vector<agent::LockView> HeldBy(pid_t tid) {
  for (const agent::ThreadLocksView& t : agent::SnapshotThreadLocks()) {
    if (t.tid == tid) return t.held;
  }
  return {};
}

// glibc lets another thread unlock a normal mutex (a mutex used as a
// semaphore): the hold ends there, though its release never reaches the
// thread that locked it. That thread's record kept the mutex as held for
// good, and each lock it took later got an edge from it: here a false
// inversion against a thread that takes the two locks in the only order
// anyone ever held them.
TEST_F(InterposeHandOffTest, AMutexUnlockedByAnotherThreadLeavesNoStaleHold) {
  std::atomic<int> step{0};
  std::atomic<pid_t> tid{0};
  std::thread locker([&] {
    tid = testing::ThisThreadId();
    ASSERT_EQ(pthread_mutex_lock(&g_handed_off), 0);
    step = 1;
    while (step != 2) std::this_thread::yield();  // The test's thread unlocks it.
    ASSERT_EQ(pthread_mutex_lock(&g_after_hand_off), 0);
    pthread_mutex_unlock(&g_after_hand_off);
    step = 3;
    while (step != 4) std::this_thread::yield();  // Stays alive to be read.
  });
  while (step != 1) std::this_thread::yield();
  ASSERT_EQ(pthread_mutex_unlock(&g_handed_off), 0);  // The hand-off.
  step = 2;
  while (step != 3) std::this_thread::yield();
  EXPECT_TRUE(HeldBy(tid.load()).empty());
  OnThread([] { TakeInOrder(&g_after_hand_off, &g_handed_off); });
  EXPECT_EQ(hook_edges, std::vector<std::string>{});
  step = 4;
  locker.join();
}

// A mutex handed off again and again (locked by one thread, unlocked by
// another): each stale hold took one of the record's kMaxHeldLocks slots,
// and once they were all taken the thread's later locks were neither
// listed nor checked.
TEST_F(InterposeHandOffTest, HandOffsDoNotFillTheRecord) {
  std::atomic<int> step{0};
  std::atomic<pid_t> tid{0};
  std::thread locker([&] {
    tid = testing::ThisThreadId();
    for (int i = 0; i < kMaxHeldLocks; ++i) {
      ASSERT_EQ(pthread_mutex_lock(&g_handed_off), 0);
      step = 2 * i + 1;
      while (step != 2 * i + 2) std::this_thread::yield();
    }
    ASSERT_EQ(pthread_mutex_lock(&g_after_hand_off), 0);
    step = -1;
    while (step != -2) std::this_thread::yield();
    pthread_mutex_unlock(&g_after_hand_off);
  });
  for (int i = 0; i < kMaxHeldLocks; ++i) {
    while (step != 2 * i + 1) std::this_thread::yield();
    ASSERT_EQ(pthread_mutex_unlock(&g_handed_off), 0);
    step = 2 * i + 2;
  }
  while (step != -1) std::this_thread::yield();
  const std::vector<agent::LockView> held = HeldBy(tid.load());
  EXPECT_EQ(held.size(), 1u);
  EXPECT_TRUE(!held.empty() && held.back().lock == &g_after_hand_off);
  step = -2;
  locker.join();
}

// A mutex inside a region the program unmaps once another thread has
// unlocked it (a large allocation, which malloc unmaps when it is freed):
// its locker's next acquisition forgets it without reading it. Reading
// glibc's owner there, to see whether the hold had ended, killed the
// process (SIGSEGV).
TEST_F(InterposeHandOffTest, AHandedOffMutexUnmappedSinceIsNeverRead) {
  constexpr size_t kRegion = 1 << 20;
  void* region = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(region, MAP_FAILED);
  auto* m = reinterpret_cast<pthread_mutex_t*>(static_cast<char*>(region) + kRegion / 2);
  ASSERT_EQ(pthread_mutex_init(m, nullptr), 0);
  std::atomic<int> step{0};
  std::atomic<pid_t> tid{0};
  std::thread locker([&] {
    tid = testing::ThisThreadId();
    ASSERT_EQ(pthread_mutex_lock(m), 0);
    step = 1;
    while (step != 2) std::this_thread::yield();  // Unlocked and unmapped meanwhile.
    ASSERT_EQ(pthread_mutex_lock(&g_after_hand_off), 0);
    step = 3;
    while (step != 4) std::this_thread::yield();
    pthread_mutex_unlock(&g_after_hand_off);
  });
  while (step != 1) std::this_thread::yield();
  const std::vector<agent::LockView> before = HeldBy(tid.load());
  EXPECT_TRUE(before.size() == 1 && before[0].lock == m);
  ASSERT_EQ(pthread_mutex_unlock(m), 0);  // The hand-off.
  ASSERT_EQ(munmap(region, kRegion), 0);
  step = 2;
  while (step != 3) std::this_thread::yield();
  const std::vector<agent::LockView> held = HeldBy(tid.load());
  EXPECT_EQ(held.size(), 1u);
  EXPECT_TRUE(!held.empty() && held.back().lock == &g_after_hand_off);
  step = 4;
  locker.join();
}

// A hand-off ends the hold it releases, not the one its locker takes next:
// relocked after the hand-off (by an unlocker that holds a lock of its
// own, here), the mutex stays listed, and its edge into the next lock is
// recorded. (Compared with glibc's owner, the relock looked like the hold
// the hand-off had ended: both were listed.)
TEST_F(InterposeHandOffTest, AMutexTakenAgainAfterItsHandOffStaysHeld) {
  std::atomic<int> step{0};
  std::atomic<pid_t> tid{0};
  std::thread locker([&] {
    tid = testing::ThisThreadId();
    ASSERT_EQ(pthread_mutex_lock(&g_taken_again), 0);
    step = 1;
    while (step != 2) std::this_thread::yield();  // The test's thread unlocks it.
    ASSERT_EQ(pthread_mutex_lock(&g_taken_again), 0);
    ASSERT_EQ(pthread_mutex_lock(&g_after_taken_again), 0);
    step = 3;
    while (step != 4) std::this_thread::yield();
    pthread_mutex_unlock(&g_after_taken_again);
    pthread_mutex_unlock(&g_taken_again);
  });
  while (step != 1) std::this_thread::yield();
  ASSERT_EQ(pthread_mutex_lock(&g_unlocker_own), 0);
  ASSERT_EQ(pthread_mutex_unlock(&g_taken_again), 0);  // The hand-off.
  pthread_mutex_unlock(&g_unlocker_own);
  step = 2;
  while (step != 3) std::this_thread::yield();
  const std::vector<agent::LockView> held = HeldBy(tid.load());
  EXPECT_EQ(held.size(), 2u);
  EXPECT_TRUE(held.size() == 2 && held[0].lock == &g_taken_again &&
              held[1].lock == &g_after_taken_again);
  step = 4;
  locker.join();
  OnThread([] { TakeInOrder(&g_after_taken_again, &g_taken_again); });
  EXPECT_EQ(hook_edges, (std::vector<std::string>{"g_after_taken_again->g_taken_again",
                                                  "g_taken_again->g_after_taken_again"}));
}

}  // namespace
}  // namespace lockprof
