// Lock-order checking of glibc's rwlocks, through the interposer linked into
// this test (lockprof::interpose). On the default kind a reader never waits
// for another reader, even behind a waiting writer (checked here against
// glibc itself), so two threads that take two of them for reading in
// opposite orders cannot deadlock and are not reported; a write on each side,
// or the writer-preferring kind, makes the same orders a potential deadlock.
#include <errno.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "lock_order_fixture.h"
#include "lockprof/primitives/interpose/rwlock_word.h"
#include "test_util.h"

pthread_rwlock_t g_read_a = PTHREAD_RWLOCK_INITIALIZER;
pthread_rwlock_t g_read_b = PTHREAD_RWLOCK_INITIALIZER;
pthread_rwlock_t g_write_a = PTHREAD_RWLOCK_INITIALIZER;
pthread_rwlock_t g_write_b = PTHREAD_RWLOCK_INITIALIZER;
pthread_rwlock_t g_later_a = PTHREAD_RWLOCK_INITIALIZER;
pthread_rwlock_t g_later_b = PTHREAD_RWLOCK_INITIALIZER;
pthread_rwlock_t g_only_read_a = PTHREAD_RWLOCK_INITIALIZER;
pthread_rwlock_t g_only_read_b = PTHREAD_RWLOCK_INITIALIZER;
pthread_rwlock_t g_writers_first_a = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
pthread_rwlock_t g_writers_first_b = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

namespace lockprof {
namespace {

using LockOrderRwlockTest = testing::LockOrderFixture;

// Takes `first` then `second`, each for reading or writing.
void TakeInOrder(pthread_rwlock_t* first, bool write_first, pthread_rwlock_t* second,
                 bool write_second) {
  ASSERT_EQ(write_first ? pthread_rwlock_wrlock(first) : pthread_rwlock_rdlock(first), 0);
  ASSERT_EQ(write_second ? pthread_rwlock_wrlock(second) : pthread_rwlock_rdlock(second), 0);
  pthread_rwlock_unlock(second);
  pthread_rwlock_unlock(first);
}

// Whether a reader gets into `rw`, read-held, while a writer waits for it.
bool ReaderPassesAWaitingWriter(pthread_rwlock_t* rw) {
  EXPECT_EQ(pthread_rwlock_rdlock(rw), 0);
  std::thread writer([rw] {
    pthread_rwlock_wrlock(rw);
    pthread_rwlock_unlock(rw);
  });
  // The writer is waiting once glibc's word says a writer holds or waits.
  for (int ms = 0; ms < 10000; ++ms) {
    if ((interpose::RwlockReaders(rw) & interpose::kRwWriteLocked) != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  bool passed = false;
  std::thread([rw, &passed] {
    passed = pthread_rwlock_tryrdlock(rw) == 0;
    if (passed) pthread_rwlock_unlock(rw);
  }).join();
  pthread_rwlock_unlock(rw);
  writer.join();
  return passed;
}

// What the checking relies on, checked against the glibc that runs.
TEST_F(LockOrderRwlockTest, OnlyTheDefaultKindLetsAReaderPastAWaitingWriter) {
  ASSERT_TRUE(interpose::RwlockWordKnown());
  pthread_rwlock_t readers_first = PTHREAD_RWLOCK_INITIALIZER;
  EXPECT_TRUE(ReaderPassesAWaitingWriter(&readers_first));
  EXPECT_TRUE(interpose::RwlockReadersFirst(&readers_first));

  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  for (int kind : {PTHREAD_RWLOCK_PREFER_READER_NP, PTHREAD_RWLOCK_PREFER_WRITER_NP,
                   PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP}) {
    pthread_rwlockattr_setkind_np(&attr, kind);
    pthread_rwlock_t rw;
    pthread_rwlock_init(&rw, &attr);
    const bool passes = ReaderPassesAWaitingWriter(&rw);
    EXPECT_EQ(passes, kind != PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) << kind;
    EXPECT_EQ(interpose::RwlockReadersFirst(&rw), passes) << kind;
    pthread_rwlock_destroy(&rw);
  }
  pthread_rwlockattr_destroy(&attr);
  pthread_rwlock_t writers_first = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
  EXPECT_FALSE(ReaderPassesAWaitingWriter(&writers_first));
  EXPECT_FALSE(interpose::RwlockReadersFirst(&writers_first));
}

TEST_F(LockOrderRwlockTest, ReadHoldsInOppositeOrdersAreNoInversion) {
  OnThread([] { TakeInOrder(&g_read_a, false, &g_read_b, false); });
  OnThread([] { TakeInOrder(&g_read_b, false, &g_read_a, false); });
  EXPECT_EQ(hook_calls.load(), 0);
  EXPECT_EQ(LockOrderInversions(), 0u);
}

// Each holds one for reading and waits to write the other: neither write
// gets in while the other thread reads.
TEST_F(LockOrderRwlockTest, AWriteOnEachSideIsAnInversion) {
  OnThread([] { TakeInOrder(&g_write_a, false, &g_write_b, true); });
  OnThread([] { TakeInOrder(&g_write_b, false, &g_write_a, true); });
  ASSERT_EQ(hook_calls.load(), 1);
  EXPECT_EQ(hook_edges, (std::vector<std::string>{"g_write_b->g_write_a", "g_write_a->g_write_b"}));
}

// The orders are taken for reading first, then one of them again by a
// writer: with that edge's new kind the cycle can deadlock (the first
// thread reading a and waiting to read b, which the writer holds; the
// writer waiting to write a), found when the writer takes it, once.
TEST_F(LockOrderRwlockTest, AnOrderTakenAgainForWritingCompletesTheCycle) {
  OnThread([] { TakeInOrder(&g_later_a, false, &g_later_b, false); });
  OnThread([] { TakeInOrder(&g_later_b, false, &g_later_a, false); });
  EXPECT_EQ(hook_calls.load(), 0);
  OnThread([] { TakeInOrder(&g_later_b, true, &g_later_a, true); });
  ASSERT_EQ(hook_calls.load(), 1);
  EXPECT_EQ(hook_edges, (std::vector<std::string>{"g_later_b->g_later_a", "g_later_a->g_later_b"}));
  OnThread([] { TakeInOrder(&g_later_b, true, &g_later_a, true); });
  EXPECT_EQ(hook_calls.load(), 1);
}

// A lock only ever read holds no reader up: writes elsewhere in the
// orders change nothing.
TEST_F(LockOrderRwlockTest, ALockOnlyEverReadBlocksNoCycle) {
  OnThread([] { TakeInOrder(&g_only_read_a, false, &g_only_read_b, false); });
  OnThread([] { TakeInOrder(&g_only_read_b, false, &g_only_read_a, true); });
  OnThread([] { TakeInOrder(&g_only_read_a, true, &g_only_read_b, false); });
  EXPECT_EQ(hook_calls.load(), 0);
}

// On the writer-preferring kind a reader queues behind a waiting writer: a
// third thread's write can wedge the two readers.
TEST_F(LockOrderRwlockTest, OnTheWriterPreferringKindReadHoldsCount) {
  OnThread([] { TakeInOrder(&g_writers_first_a, false, &g_writers_first_b, false); });
  OnThread([] { TakeInOrder(&g_writers_first_b, false, &g_writers_first_a, false); });
  EXPECT_EQ(hook_calls.load(), 1);
}

}  // namespace
}  // namespace lockprof
