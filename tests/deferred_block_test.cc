// Block events of lock waits are recorded when the waiter releases the lock
// it waited for, never inside the critical section it entered
// (primitives/internal/deferred_block.h): while the waiter holds the lock,
// its wait is in no profile and no hook has run; once it releases, the
// wait is there, exactly once, as long as the waiter measured it.
#include "lockprof/primitives/internal/deferred_block.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "lifecycle_util.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::AllRatesAtOne;
using lockprof::testing::NowNanos;
using lockprof::testing::ProfileDelta;
using lockprof::testing::WaitUntilAsleep;

// A thread that runs the functions it is handed, one at a time, so that a
// test can make it lock, hold and unlock at chosen moments.
class Worker {
 public:
  Worker() : thread_([this] { Loop(); }) {}
  ~Worker() {
    Run(nullptr);
    thread_.join();
  }
  // Hands `fn` to the thread and returns at once (nullptr: exit).
  void Run(std::function<void()> fn) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !pending_; });
    job_ = std::move(fn);
    pending_ = true;
    exit_ = job_ == nullptr;
    cv_.notify_all();
  }
  // Waits until the last function handed over has returned.
  void Finish() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !pending_; });
  }
  pid_t tid() const { return tid_.load(); }

 private:
  void Loop() {
    tid_ = gettid();
    for (;;) {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return pending_; });
      if (exit_) return;
      std::function<void()> job = std::move(job_);
      l.unlock();
      job();
      l.lock();
      pending_ = false;
      cv_.notify_all();
    }
  }
  std::mutex mu_;  // The harness's own bookkeeping: not a lockprof lock.
  std::condition_variable cv_;
  std::function<void()> job_;
  bool pending_ = false, exit_ = false;
  std::atomic<pid_t> tid_{0};
  std::thread thread_;
};

// The waiters' stacks, for the profile: noinline frames around each lock.
// The tests lock and unlock in different functions and threads, handed
// over as lambdas: out of reach of -Wthread-safety, which is off for them.
ABSL_ATTRIBUTE_NOINLINE void DeferredWaiterLocks(lockprof::Mutex* mu)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu->lock();
  asm volatile("");
}
ABSL_ATTRIBUTE_NOINLINE void DeferredWaiterLocksWrite(lockprof::SharedMutex* mu)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu->lock();
  asm volatile("");
}
ABSL_ATTRIBUTE_NOINLINE void DeferredWaiterLocksRead(lockprof::SharedMutex* mu)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu->lock_shared();
  asm volatile("");
}

// One acquisition that waits: this thread holds a lock (hold/release), the
// worker calls acquire(), which sleeps; 20 ms after it fell asleep this
// thread releases, and the worker, now holding the lock, returns. Returns
// how long acquire() took, as the worker measured it around the call.
int64_t WaitedAcquisition(Worker* w, const std::function<void()>& hold,
                          const std::function<void()>& release,
                          const std::function<void()>& acquire) {
  hold();
  std::atomic<bool> calling{false};
  int64_t took = 0;
  w->Run([&] {
    calling = true;
    const int64_t t0 = NowNanos();
    acquire();
    took = NowNanos() - t0;
  });
  while (!calling.load()) std::this_thread::yield();
  WaitUntilAsleep(w->tid());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  release();
  w->Finish();
  return took;
}

// One waited acquisition (WaitedAcquisition) by a worker whose stack holds
// `waiter`, of the lock named `lock`: its wait is in no profile while the
// worker holds the lock, and is there, once, after unlock(): at least the
// 20 ms it slept, at most what the worker measured.
void ExpectWaitRecordedAtRelease(const char* waiter, const char* lock,
                                 const std::function<void()>& hold,
                                 const std::function<void()>& release,
                                 const std::function<void()>& acquire,
                                 const std::function<void()>& unlock) {
  AllRatesAtOne rates;
  Worker w;
  ProfileDelta count("block", 0, waiter, {{"lock", lock}});
  ProfileDelta delay("block", 1, waiter, {{"lock", lock}});
  const int64_t took = WaitedAcquisition(&w, hold, release, acquire);
  EXPECT_EQ(count.Get(), 0) << "the wait was recorded inside the critical section";
  w.Run(unlock);
  w.Finish();
  EXPECT_EQ(count.Get(), 1);
  EXPECT_GE(delay.Get(), 20000000);
  EXPECT_LE(delay.Get(), took);
}

TEST(DeferredBlockTest, MutexWaitIsRecordedAtTheRelease) {
  lockprof::Mutex mu{"deferred.mutex"};
  ExpectWaitRecordedAtRelease(
      "DeferredWaiterLocks", "deferred.mutex", [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.lock(); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.unlock(); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { DeferredWaiterLocks(&mu); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.unlock(); });
}

TEST(DeferredBlockTest, WriterWaitIsRecordedAtTheRelease) {
  lockprof::SharedMutex mu{"deferred.writer"};
  ExpectWaitRecordedAtRelease(
      "DeferredWaiterLocksWrite", "deferred.writer",
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.lock_shared(); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.unlock_shared(); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { DeferredWaiterLocksWrite(&mu); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.unlock(); });
}

TEST(DeferredBlockTest, ReaderWaitIsRecordedAtTheRelease) {
  lockprof::SharedMutex mu{"deferred.reader"};
  ExpectWaitRecordedAtRelease(
      "DeferredWaiterLocksRead", "deferred.reader",
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.lock(); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.unlock(); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { DeferredWaiterLocksRead(&mu); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.unlock_shared(); });
}

// A thread that holds more locks it waited for than it can park events for
// records the extra one at once; every wait is recorded exactly once.
TEST(DeferredBlockTest, NestedWaitsBeyondTheParkingSlotsAreRecordedOnce) {
  AllRatesAtOne rates;
  constexpr int kLocks = lockprof::internal::kMaxDeferredBlocks + 1;
  std::vector<lockprof::Mutex> mus(kLocks);
  Worker w;
  ProfileDelta count("block", 0, "DeferredWaiterLocks", {});
  for (lockprof::Mutex& mu : mus) {
    WaitedAcquisition(
        &w, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.lock(); },
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.unlock(); },
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { DeferredWaiterLocks(&mu); });
  }
  EXPECT_EQ(count.Get(), 1) << "only the wait beyond the slots is recorded while all are held";
  w.Run([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (int i = kLocks - 1; i >= 0; --i) mus[size_t(i)].unlock();
  });
  w.Finish();
  EXPECT_EQ(count.Get(), kLocks);
}

// The slow-acquire hook runs after the release too: the lock it reports is
// free by then (it ran inside the waiter's critical section before).
std::atomic<int> g_hook_calls{0};
std::atomic<bool> g_hook_found_lock_free{false};
lockprof::Mutex g_hooked{"deferred.hooked"};

TEST(DeferredBlockTest, SlowAcquireHookRunsAfterTheRelease) {
  AllRatesAtOne rates;
  lockprof::SetSlowAcquireHook(std::chrono::milliseconds(10), [](const lockprof::SlowAcquire& s) {
    if (s.lock == nullptr || std::string(s.lock) != "deferred.hooked") return;
    ++g_hook_calls;
    if (g_hooked.try_lock()) {
      g_hook_found_lock_free = true;
      g_hooked.unlock();
    }
  });
  Worker w;
  WaitedAcquisition(
      &w, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_hooked.lock(); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_hooked.unlock(); },
      [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { DeferredWaiterLocks(&g_hooked); });
  EXPECT_EQ(g_hook_calls.load(), 0);
  w.Run([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_hooked.unlock(); });
  w.Finish();
  lockprof::SetSlowAcquireHook(std::chrono::nanoseconds(0), nullptr);
  EXPECT_EQ(g_hook_calls.load(), 1);
  EXPECT_TRUE(g_hook_found_lock_free.load());
}

// Beyond the parking slots, a waited acquisition is recorded inside its
// critical section: the hook, which may take the lock it reports
// (slow_acquire.h), must not run there. Before, a hook that locked it
// deadlocked the thread on itself at the fifth nested lock.
constexpr int kNested = lockprof::internal::kMaxDeferredBlocks + 1;
static_assert(kNested == 5 && lockprof::agent::kMaxSharedHoldSamples + 1 == kNested,
              "one lock beyond the slots of either kind");
lockprof::Mutex g_nested[kNested] = {
    lockprof::Mutex{"deferred.nested.0"}, lockprof::Mutex{"deferred.nested.1"},
    lockprof::Mutex{"deferred.nested.2"}, lockprof::Mutex{"deferred.nested.3"},
    lockprof::Mutex{"deferred.nested.4"}};
lockprof::SharedMutex g_nested_rw[kNested] = {
    lockprof::SharedMutex{"deferred.nested_rw.0"}, lockprof::SharedMutex{"deferred.nested_rw.1"},
    lockprof::SharedMutex{"deferred.nested_rw.2"}, lockprof::SharedMutex{"deferred.nested_rw.3"},
    lockprof::SharedMutex{"deferred.nested_rw.4"}};
std::atomic<int> g_nested_calls{0};
std::atomic<int> g_nested_found_held{0};

void TryTheReportedLock(const lockprof::SlowAcquire& s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (s.lock == nullptr) return;
  const std::string name = s.lock;
  for (int i = 0; i < kNested; ++i) {
    const bool rw = name == "deferred.nested_rw." + std::to_string(i);
    if (!rw && name != "deferred.nested." + std::to_string(i)) continue;
    ++g_nested_calls;
    const bool free = rw ? g_nested_rw[i].try_lock() : g_nested[i].try_lock();
    if (!free) ++g_nested_found_held;
    if (free && rw) g_nested_rw[i].unlock();
    if (free && !rw) g_nested[i].unlock();
  }
}

TEST(DeferredBlockTest, TheHookNeverRunsInsideTheSectionOfTheLockItReports) {
  AllRatesAtOne rates;
  lockprof::SetSlowAcquireHook(std::chrono::milliseconds(5), TryTheReportedLock);
  Worker w;
  // The worker takes all of `locks` (acquire(i)), each after a wait, then
  // releases them (release(i)).
  auto nest = [&](auto* locks, auto acquire, auto release) {
    for (int i = 0; i < kNested; ++i) {
      WaitedAcquisition(
          &w, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { locks[i].lock(); },
          [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { locks[i].unlock(); }, [&] { acquire(i); });
    }
    w.Run([&] {
      for (int i = kNested - 1; i >= 0; --i) release(i);
    });
    w.Finish();
  };
  nest(
      g_nested, [](int i) { DeferredWaiterLocks(&g_nested[i]); },
      [](int i) ABSL_NO_THREAD_SAFETY_ANALYSIS { g_nested[i].unlock(); });
  // Read holds: the fifth finds no room in the thread's read-hold slots.
  nest(
      g_nested_rw, [](int i) { DeferredWaiterLocksRead(&g_nested_rw[i]); },
      [](int i) ABSL_NO_THREAD_SAFETY_ANALYSIS { g_nested_rw[i].unlock_shared(); });
  lockprof::SetSlowAcquireHook(std::chrono::nanoseconds(0), nullptr);
  EXPECT_EQ(g_nested_found_held.load(), 0) << "the hook ran while its lock was held";
  // Each kind: every acquisition but the one beyond the slots.
  EXPECT_EQ(g_nested_calls.load(), 2 * (kNested - 1));
}

}  // namespace
