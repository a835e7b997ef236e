// lockprof::SharedMutex semantics: std wrappers, reader/writer exclusion
// under stress, no starvation either way, misuse. (Profiles: see
// shared_mutex_profile_test.cc.)
#include "lockprof/primitives/shared_mutex.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "test_util.h"

namespace {

// A global needs no dynamic initialisation.
ABSL_CONST_INIT lockprof::SharedMutex g_global_mu{"global.shared"};

using lockprof::testing::ScopedRates;

TEST(SharedMutexTest, WorksWithStandardWrappers) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::SharedMutex mu;
  {
    std::shared_lock<lockprof::SharedMutex> r1(mu);
    std::shared_lock<lockprof::SharedMutex> r2(mu, std::try_to_lock);
    EXPECT_TRUE(r2.owns_lock());  // Readers share.
    EXPECT_FALSE(mu.try_lock());  // A writer does not get in.
  }
  {
    std::unique_lock<lockprof::SharedMutex> w(mu);
    EXPECT_TRUE(w.owns_lock());
    EXPECT_FALSE(mu.try_lock_shared());
    EXPECT_FALSE(mu.try_lock());
  }
  lockprof::SharedMutex other;
  { std::scoped_lock both(mu, other); }
  EXPECT_TRUE(mu.try_lock());
  mu.unlock();
  EXPECT_TRUE(mu.try_lock_shared());
  mu.unlock_shared();
  std::shared_lock<lockprof::SharedMutex> g(g_global_mu);
  EXPECT_STREQ(g_global_mu.name(), "global.shared");
}

TEST(SharedMutexTest, WorksWithConditionVariableAny) {
  lockprof::SharedMutex mu;
  std::condition_variable_any cv;
  int stage = 0;
  std::thread t([&] {
    {
      std::unique_lock<lockprof::SharedMutex> w(mu);
      stage = 1;
    }
    cv.notify_all();
    std::unique_lock<lockprof::SharedMutex> w(mu);
    cv.wait(w, [&] { return stage == 2; });
  });
  {
    // Waiting with the lock held shared.
    std::shared_lock<lockprof::SharedMutex> r(mu);
    cv.wait(r, [&] { return stage == 1; });
  }
  {
    std::unique_lock<lockprof::SharedMutex> w(mu);
    stage = 2;
  }
  cv.notify_all();
  t.join();
}

// Writers keep two fields equal and count themselves inside; readers check
// both, under every kind of acquisition. Any overlap of a writer with
// anyone is seen.
void StressExclusion(int readers, int writers, int iters) {
  lockprof::SharedMutex mu{"stress.shared"};
  int64_t a = 0, b = 0;
  std::atomic<int> writers_inside{0}, readers_inside{0};
  std::atomic<int64_t> violations{0}, reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < iters; ++i) {
        const bool tried = (i + t) % 7 == 0;
        if (tried) {
          if (!mu.try_lock()) continue;
        } else {
          mu.lock();
        }
        if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) ++violations;
        ++a;
        std::this_thread::yield();
        ++b;
        writers_inside.fetch_sub(1);
        mu.unlock();
      }
    });
  }
  for (int t = 0; t < readers; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < iters; ++i) {
        if ((i + t) % 5 == 0) {
          if (!mu.try_lock_shared()) continue;
        } else {
          mu.lock_shared();
        }
        readers_inside.fetch_add(1);
        if (writers_inside.load() != 0 || a != b) ++violations;
        ++reads;
        readers_inside.fetch_sub(1);
        mu.unlock_shared();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(a, b);
  EXPECT_GT(a, 0);
  EXPECT_GT(reads.load(), 0);
}

TEST(SharedMutexTest, StressReadersAndWritersExclude) { StressExclusion(6, 2, 20000); }

TEST(SharedMutexTest, StressWithProfilingOff) {
  ScopedRates off(0, 0, 0);
  StressExclusion(3, 3, 10000);
}

// Every wait recorded, every hold sampled (shared ones through the
// thread-local slots): the recording paths run concurrently with locking.
TEST(SharedMutexTest, StressWithEveryRateAtOne) {
  ScopedRates all(1, 1, 1);
  StressExclusion(4, 2, 10000);
}

// Runs a stream of `threads` threads, each repeating stream_op(ops) — one
// locked operation that counts itself in `ops` — until the asker got in;
// then the asker's acquisition, ask(). Returns how many stream operations
// completed between asking and getting in. The stream stops by itself
// `give_up` operations after the ask, so that an unfair lock fails the
// caller's bound instead of hanging.
//
// The count starts when the asker reads it, before it has queued: an asker
// preempted in between (2 loaded cores, a sanitized build) lets a few
// thousand operations by once in a while (CI saw 2468 under TSan). So the
// fewest over three rounds is returned: a fair lock's is a handful, an
// unfair lock's is the whole stream in every round.
template <typename StreamOp, typename Ask>
int64_t OpsBeforeAskerGetsIn(int threads, int64_t give_up, StreamOp stream_op, Ask ask) {
  int64_t fewest = INT64_MAX;
  for (int round = 0; round < 3; ++round) {
    std::atomic<int64_t> ops{0}, asked_at{-1};
    std::atomic<bool> done{false};
    std::vector<std::thread> stream;
    for (int t = 0; t < threads; ++t) {
      stream.emplace_back([&] {
        while (!done.load()) {
          const int64_t asked = asked_at.load();
          if (asked >= 0 && ops.load() - asked > give_up) break;
          stream_op(ops);
        }
      });
    }
    while (ops.load() < 1000) std::this_thread::yield();
    const int64_t asked = ops.load();
    asked_at.store(asked);
    const int64_t got_in = ask(ops);
    done.store(true);
    for (auto& t : stream) t.join();
    fewest = std::min(fewest, got_in - asked);
  }
  return fewest;
}

// A stream of overlapping readers keeps the lock read-held without a gap
// (each leaves only once another is in, or after a bounded wait, since a
// fair lock stops letting readers in); a writer asks. Fair: the readers
// inside leave, new ones queue, the writer is in after a handful of reader
// operations. (glibc's reader-preferring std::shared_mutex fails this.)
TEST(SharedMutexTest, WriterIsNotStarvedByAStreamOfReaders) {
  lockprof::SharedMutex mu;
  std::atomic<int> holders{0};
  const int64_t ops_before = OpsBeforeAskerGetsIn(
      3, 200000,
      [&](std::atomic<int64_t>& ops) {
        mu.lock_shared();
        holders.fetch_add(1);
        ops.fetch_add(1);
        for (int i = 0; i < 1000 && holders.load() < 2; ++i) std::this_thread::yield();
        holders.fetch_sub(1);
        mu.unlock_shared();
      },
      [&](std::atomic<int64_t>& ops) {
        std::lock_guard<lockprof::SharedMutex> w(mu);
        return ops.load();
      });
  // An unfair lock lets the whole stream (200000) through.
  EXPECT_LE(ops_before, 2000);
}

// The mirror image: writers hand the lock to each other back to back (each
// holds until another writer waits), a reader asks. Fair: it gets in when
// the current writer unlocks, before the next writer. (A writer-preferring
// rwlock fails this.)
TEST(SharedMutexTest, ReaderIsNotStarvedByAStreamOfWriters) {
  lockprof::SharedMutex mu;
  std::atomic<int> wanting{0};
  const int64_t ops_before = OpsBeforeAskerGetsIn(
      3, 20000,
      [&](std::atomic<int64_t>& ops) {
        wanting.fetch_add(1);
        std::lock_guard<lockprof::SharedMutex> w(mu);
        wanting.fetch_sub(1);
        ops.fetch_add(1);
        for (int i = 0; i < 1000 && wanting.load() < 1; ++i) std::this_thread::yield();
      },
      [&](std::atomic<int64_t>& ops) {
        std::shared_lock<lockprof::SharedMutex> r(mu);
        return ops.load();
      });
  // An unfair lock lets all 20000 by.
  EXPECT_LE(ops_before, 2000);
}

// Readers queued behind a writer all get in at its unlock, together: none
// of them waits for the next writer.
TEST(SharedMutexTest, QueuedReadersAreAdmittedTogether) {
  lockprof::SharedMutex mu;
  constexpr int kReaders = 4;
  std::atomic<int> inside{0}, max_inside{0};
  mu.lock();
  // Every reader is asleep on the lock, so queued behind the writer, before
  // it unlocks.
  std::vector<std::thread> readers = lockprof::testing::StartBlocked(kReaders, [&] {
    std::shared_lock<lockprof::SharedMutex> r(mu);
    int now = inside.fetch_add(1) + 1;
    int seen = max_inside.load();
    while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
    }
    // Stay until all are in: only possible if they hold it together.
    while (max_inside.load() < kReaders) std::this_thread::yield();
    inside.fetch_sub(1);
  });
  mu.unlock();
  for (auto& t : readers) t.join();
  EXPECT_EQ(max_inside.load(), kReaders);
}

// The reader count stops short of the flag bits above it: at 2^28 holds it
// carried into them, the lock read as free and a writer got in.
TEST(SharedMutexDeathTest, TooManyReadHoldsAbortAndAdmitNoWriter) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  constexpr int64_t kLimit = int64_t{1} << 27;
  lockprof::SharedMutex mu;
  for (int64_t i = 0; i < kLimit; ++i) mu.lock_shared();
  EXPECT_FALSE(mu.try_lock_shared());
  EXPECT_FALSE(mu.try_lock());
  EXPECT_DEATH(mu.lock_shared(), "2\\^27 read holds at once");
  for (int64_t i = 0; i < kLimit; ++i) mu.unlock_shared();
  EXPECT_TRUE(mu.try_lock());
  mu.unlock();
}

TEST(SharedMutexDeathTest, UnlockOfUnlockedSharedMutexAborts) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::SharedMutex mu;
  EXPECT_DEATH(mu.unlock(), "lockprof: unlock of unlocked SharedMutex");
}

TEST(SharedMutexDeathTest, UnlockOfReadLockedSharedMutexAborts) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::SharedMutex mu;
  mu.lock_shared();
  EXPECT_DEATH(mu.unlock(), "lockprof: unlock of unlocked SharedMutex");
  mu.unlock_shared();
}

TEST(SharedMutexDeathTest, UnlockSharedOfUnlockedSharedMutexAborts) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::SharedMutex mu;
  EXPECT_DEATH(mu.unlock_shared(), "lockprof: unlock_shared of unlocked SharedMutex");
}

TEST(SharedMutexDeathTest, UnlockSharedOfWriteLockedSharedMutexAborts)
ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::SharedMutex mu;
  mu.lock();
  EXPECT_DEATH(mu.unlock_shared(), "lockprof: unlock_shared of unlocked SharedMutex");
  mu.unlock();
}

}  // namespace
