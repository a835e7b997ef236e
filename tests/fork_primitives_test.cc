// fork() and each primitive: what the parent's threads were waiting for at
// the fork must not leak into the child. The forking thread holds a lock (or
// owns a condition) that parent threads wait on; in the child those threads
// do not exist, and the child's own threads must get what they wait for.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "lifecycle_util.h"

// The children below start threads.
LOCKPROF_ALLOW_THREADS_AFTER_FORK()

namespace {

using lockprof::testing::AllRatesAtOne;
using lockprof::testing::RunInForkedChild;
using lockprof::testing::StartBlocked;

// Parent threads wait on a CondVar. In the child, a child thread waits on it
// too, and one notify_one must wake that thread: without the queue's fork
// generation the notification goes to a parent thread's node (nobody) and
// the child's waiter sleeps forever.
TEST(ForkPrimitivesTest, CondVarNotifyReachesTheChildsOwnWaiter) {
  AllRatesAtOne rates;
  lockprof::Mutex mu{"fork.cv.mu"};
  lockprof::CondVar cv;
  bool parent_done = false;
  int parents_waiting = 0;  // Under mu.
  auto parents = StartBlocked(2, [&] {
    std::unique_lock<lockprof::Mutex> lock(mu);
    ++parents_waiting;
    cv.wait(lock, [&] { return parent_done; });
  });
  // Asleep may still mean asleep on mu; a parent counted under mu gave mu up
  // only by waiting on cv: once both are counted, both are in its queue.
  for (int ms = 0; ms < 10000; ++ms) {
    {
      std::lock_guard<lockprof::Mutex> lock(mu);
      if (parents_waiting == 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  {
    std::lock_guard<lockprof::Mutex> lock(mu);
    EXPECT_EQ(parents_waiting, 2) << "the parents never waited on the condition";
  }
  auto child = RunInForkedChild([&](int) {
    bool queued = false, ready = false;
    std::thread waiter([&] {
      std::unique_lock<lockprof::Mutex> lock(mu);
      queued = true;
      while (!ready) cv.wait(lock);
    });
    // Once the waiter said so under the mutex, it is in the queue.
    for (;;) {
      std::unique_lock<lockprof::Mutex> lock(mu);
      if (queued) {
        ready = true;
        break;
      }
    }
    cv.notify_one();
    waiter.join();
    return 0;
  });
  EXPECT_FALSE(child.timed_out) << "the child's waiter missed its notification";
  EXPECT_EQ(child.exit_code, 0);
  {
    std::lock_guard<lockprof::Mutex> lock(mu);
    parent_done = true;
  }
  cv.notify_all();
  for (auto& t : parents) t.join();
}

// In a child: releases the write lock the forking thread held, then uses
// the lock both ways with a thread of the child contending.
int UseSharedMutexInChild(lockprof::SharedMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu->unlock();
  std::thread other([mu] {
    for (int i = 0; i < 1000; ++i) std::shared_lock<lockprof::SharedMutex> lock(*mu);
  });
  for (int i = 0; i < 1000; ++i) std::lock_guard<lockprof::SharedMutex> lock(*mu);
  other.join();
  return mu->try_lock() ? 0 : 2;
}

// The forking thread holds `mu` exclusively while `writers` parent writers
// wait for it and then `readers` parent readers queue behind it. The child
// releases it and then uses it both ways; then the parent does.
void ExpectTheChildUsesItsHeldLock(lockprof::SharedMutex& mu, int writers,
                                   int readers) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu.lock();
  auto parents = StartBlocked(writers, [&] { std::lock_guard<lockprof::SharedMutex> lock(mu); });
  for (auto& t : StartBlocked(readers, [&] { std::shared_lock<lockprof::SharedMutex> lock(mu); })) {
    parents.push_back(std::move(t));
  }
  auto child = RunInForkedChild([&](int) { return UseSharedMutexInChild(&mu); });
  EXPECT_FALSE(child.timed_out) << "a writer in the child waited for the parent's waiters";
  EXPECT_EQ(child.exit_code, 0);
  mu.unlock();
  for (auto& t : parents) t.join();
}

TEST(ForkPrimitivesTest, SharedMutexWithAWaitingWriterWorksInTheChild) {
  AllRatesAtOne rates;
  lockprof::SharedMutex mu{"fork.rw"};
  ExpectTheChildUsesItsHeldLock(mu, 1, 0);
}

// Parent readers queued behind the forking thread's write lock are counted
// in the lock's reader count (the writer's unlock admits them all at once);
// in the child they do not exist, so the child's ledger takes them out of
// the count. Without that, the child's unlock would admit three phantom
// readers and the child's first writer would wait for them forever.
TEST(ForkPrimitivesTest, SharedMutexWithQueuedReadersWorksInTheChild) {
  AllRatesAtOne rates;
  lockprof::SharedMutex mu{"fork.rw.readers"};
  ExpectTheChildUsesItsHeldLock(mu, 0, 3);
}

// Both: a parent writer waits, then parent readers queue behind it. The
// writer registered the lock's waiters first; the readers' count must
// still come out of the lock word in the child.
TEST(ForkPrimitivesTest, SharedMutexWithAWaitingWriterThenQueuedReadersWorksInTheChild) {
  AllRatesAtOne rates;
  lockprof::SharedMutex mu{"fork.rw.both"};
  ExpectTheChildUsesItsHeldLock(mu, 1, 3);
}

// Every primitive, after the parent used it from several threads, works in
// the child, contended by a thread of the child's own.
TEST(ForkPrimitivesTest, EveryPrimitiveWorksInTheChild) {
  AllRatesAtOne rates;
  lockprof::Mutex mu{"fork.all.mutex"};
  lockprof::SharedMutex rw{"fork.all.rw"};
  lockprof::Atomic<int64_t> atomic{"fork.all.atomic", 0};
  lockprof::ShardedCounter counter{"fork.all.counter"};
  lockprof::ShardedMap<int, int> map{"fork.all.map"};
  lockprof::CowPtr<std::vector<int>> cow{"fork.all.cow"};
  auto use_all = [&](int rounds) {
    for (int i = 0; i < rounds; ++i) {
      { lockprof::MutexLock lock(&mu); }
      { std::shared_lock<lockprof::SharedMutex> lock(rw); }
      { std::lock_guard<lockprof::SharedMutex> lock(rw); }
      atomic.Update([](int64_t v) { return v + 1; });
      counter.Add(1);
      map.Set(i % 64, i);
      map.Get(i % 64);
      cow.Update([i](const std::vector<int>& v) {
        std::vector<int> next = v;
        next.push_back(i % 8);
        next.resize(std::min<size_t>(next.size(), 8));
        return next;
      });
      cow.Load();
    }
  };
  {
    std::vector<std::thread> parents;
    for (int t = 0; t < 3; ++t) parents.emplace_back(use_all, 200);
    for (auto& t : parents) t.join();
  }
  auto child = RunInForkedChild([&](int) {
    std::thread other(use_all, 200);
    use_all(200);
    other.join();
    return atomic.load() == 1000 && counter.Load() == 1000 ? 0 : 2;
  });
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0);
}

}  // namespace
