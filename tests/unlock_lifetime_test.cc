// A lock may be destroyed as soon as another thread can lock and unlock it
// (the reference-count pattern POSIX allows; glibc bug 13690 was this
// class), and its memory reused for another lock at once. So no unlock may
// touch the lock after the atomic operation that releases it: not write it
// (that would change the new lock's state) and not read it (a name read
// there is the new lock's, and the old section's contention would be
// charged to it).
//
// The window after a release is a few instructions wide, so each round
// forces a thread into it: the releasing thread and the reusing thread are
// pinned to one CPU, the releasing one at SCHED_IDLE. The reusing thread
// sleeps in the lock until the release wakes it; being the more important
// thread on that CPU, it preempts the releasing thread right there (inside
// or at the end of the wake-up), then destroys the lock, builds a fresh one
// (with another name) in the same memory, takes it and snapshots its bytes.
// Only then does the releasing thread finish its unlock call. The fresh
// lock's bytes must not have changed, and no contention may be charged
// under its name.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::ProfileDelta;
using lockprof::testing::ScopedRates;

constexpr int kRounds = 20;

// The Ops below take a lock in one function and release it in another (and
// Fresh returns its lock held), which -Wthread-safety cannot follow.
template <typename Lock>
void UnlockFresh(Lock* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu->unlock();
}
template <typename Lock>
struct Named;
template <typename Lock>
void UnlockFresh(Named<Lock>* n) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  n->mu.unlock();
}

struct Outcome {
  int modified = 0;  // Rounds whose fresh lock's bytes changed.
  int rounds = 0;    // Rounds that ran pinned as described above.
};

void SleepUntil(const std::atomic<int>& phase, int value) {
  while (phase.load(std::memory_order_acquire) < value) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

// One round. `Ops` says how each side takes and releases a `Lock`:
// Ops::Hold/Release on the releasing thread, Ops::Wait (blocks while the
// other holds it) and Ops::Drop on the reusing one; Ops::Fresh(p) builds
// the new lock in the same memory and takes it exclusively.
template <typename Lock, typename Ops>
void Round(Outcome* out) {
  alignas(Lock) unsigned char storage[sizeof(Lock)];
  Lock* old = Ops::Old(storage);
  std::atomic<int> phase{0};  // 1: old held; 2: about to wait; 3: unlock returned.
  std::atomic<pid_t> reuser_tid{0};
  std::atomic<bool> pinned{true};

  std::thread releaser([&] {
    if (lockprof::testing::PinToFirstCpu() < 0 || !lockprof::testing::RunAtIdlePriority()) {
      pinned = false;
    }
    Ops::Hold(old);
    phase.store(1, std::memory_order_release);
    while (phase.load(std::memory_order_acquire) < 2) std::this_thread::yield();
    // Released only once the other thread sleeps in the lock: the release
    // must wake it.
    if (!lockprof::testing::WaitUntilAsleep(reuser_tid.load())) pinned = false;
    Ops::Release(old);
    phase.store(3, std::memory_order_release);
  });

  std::thread reuser([&] {
    if (lockprof::testing::PinToFirstCpu() < 0) pinned = false;
    reuser_tid = lockprof::testing::ThisThreadId();
    SleepUntil(phase, 1);
    phase.store(2, std::memory_order_release);
    Ops::Wait(old);
    Ops::Drop(old);
    old->~Lock();
    Lock* fresh = Ops::Fresh(storage);
    unsigned char before[sizeof(Lock)];
    std::memcpy(before, storage, sizeof(Lock));
    SleepUntil(phase, 3);
    const bool modified = std::memcmp(before, storage, sizeof(Lock)) != 0;
    out->modified += modified;
    // A modified lock may be in any state: leave it held, never unlock it.
    if (!modified) UnlockFresh(fresh);
    fresh->~Lock();
  });
  releaser.join();
  reuser.join();
  out->rounds += pinned.load();
}

template <typename Lock, typename Ops>
Outcome Rounds() {
  Outcome out;
  for (int i = 0; i < kRounds; ++i) Round<Lock, Ops>(&out);
  return out;
}

// The writer's release wakes a reader queued behind it.
struct WriterReleases {
  static lockprof::SharedMutex* Old(void* p) {
    return new (p) lockprof::SharedMutex("unlock_lifetime.writer.old");
  }
  static void Hold(lockprof::SharedMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->lock(); }
  static void Release(lockprof::SharedMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->unlock(); }
  static void Wait(lockprof::SharedMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->lock_shared(); }
  static void Drop(lockprof::SharedMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    mu->unlock_shared();
  }
  static lockprof::SharedMutex* Fresh(void* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto* mu = new (p) lockprof::SharedMutex("unlock_lifetime.writer.fresh", 7);
    mu->lock();
    return mu;
  }
};

// The last reader's release lets a waiting writer in.
struct ReaderReleases {
  static lockprof::SharedMutex* Old(void* p) {
    return new (p) lockprof::SharedMutex("unlock_lifetime.reader.old");
  }
  static void Hold(lockprof::SharedMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->lock_shared(); }
  static void Release(lockprof::SharedMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    mu->unlock_shared();
  }
  static void Wait(lockprof::SharedMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->lock(); }
  static void Drop(lockprof::SharedMutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->unlock(); }
  static lockprof::SharedMutex* Fresh(void* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto* mu = new (p) lockprof::SharedMutex("unlock_lifetime.reader.fresh", 7);
    mu->lock();
    return mu;
  }
};

struct MutexReleases {
  static lockprof::Mutex* Old(void* p) {
    return new (p) lockprof::Mutex("unlock_lifetime.mutex.old");
  }
  static void Hold(lockprof::Mutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->lock(); }
  static void Release(lockprof::Mutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->unlock(); }
  static void Wait(lockprof::Mutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->lock(); }
  static void Drop(lockprof::Mutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS { mu->unlock(); }
  static lockprof::Mutex* Fresh(void* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto* mu = new (p) lockprof::Mutex("unlock_lifetime.mutex.fresh");
    mu->lock();
    return mu;
  }
};

// A lock named by a character array in the same object, which dies with it
// (LockName takes a const array; this one is written by the constructor,
// as a member of a struct built from a string would be). The reusing
// thread's fresh lock writes another name into those bytes: a release
// that read its name after releasing would charge the fresh name.
template <typename Lock>
struct Named {
  explicit Named(const char* n) : mu(AsConst(name)) { std::strncpy(name, n, sizeof name - 1); }
  static const char (&AsConst(char (&a)[40]))[40] { return a; }
  char name[40] = {};
  Lock mu;
};

// `Base`'s operations on the lock of a Named; the old and the fresh lock
// have names of their own.
template <typename Lock, typename Base>
struct InNamed {
  static constexpr const char* kOld = "unlock_lifetime.member.old";
  static constexpr const char* kFresh = "unlock_lifetime.member.fresh";
  static Named<Lock>* Old(void* p) { return new (p) Named<Lock>(kOld); }
  static void Hold(Named<Lock>* n) { Base::Hold(&n->mu); }
  static void Release(Named<Lock>* n) { Base::Release(&n->mu); }
  static void Wait(Named<Lock>* n) { Base::Wait(&n->mu); }
  static void Drop(Named<Lock>* n) { Base::Drop(&n->mu); }
  static Named<Lock>* Fresh(void* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    auto* n = new (p) Named<Lock>(kFresh);
    n->mu.lock();
    return n;
  }
};

// Contention (mutex profile, delay) charged under lock=`name`.
ProfileDelta Charged(const char* name) { return ProfileDelta("mutex", 1, "", {{"lock", name}}); }

TEST(UnlockLifetimeTest, WriterUnlockLeavesAReusedLockAlone) {
  ScopedRates rates(1, 1, ScopedRates::kKeep);
  ProfileDelta old_charged = Charged("unlock_lifetime.writer.old");
  ProfileDelta fresh_charged = Charged("unlock_lifetime.writer.fresh");
  const Outcome out = Rounds<lockprof::SharedMutex, WriterReleases>();
  EXPECT_EQ(out.rounds, kRounds) << "threads could not be pinned, or the reader never slept";
  EXPECT_EQ(out.modified, 0) << "of " << kRounds << " reused locks";
  // Every round's reader slept: the old lock was charged, the fresh never.
  EXPECT_GT(old_charged.Get(), 0);
  EXPECT_EQ(fresh_charged.Get(), 0);
}

TEST(UnlockLifetimeTest, LastReaderUnlockLeavesAReusedLockAlone) {
  ScopedRates rates(1, 1, ScopedRates::kKeep);
  ProfileDelta old_charged = Charged("unlock_lifetime.reader.old");
  ProfileDelta fresh_charged = Charged("unlock_lifetime.reader.fresh");
  const Outcome out = Rounds<lockprof::SharedMutex, ReaderReleases>();
  EXPECT_EQ(out.rounds, kRounds) << "threads could not be pinned, or the writer never slept";
  EXPECT_EQ(out.modified, 0) << "of " << kRounds << " reused locks";
  EXPECT_GT(old_charged.Get(), 0);
  EXPECT_EQ(fresh_charged.Get(), 0) << "the old writer's wait was charged to the fresh lock";
}

TEST(UnlockLifetimeTest, MutexUnlockLeavesAReusedLockAlone) {
  ScopedRates rates(1, 1, ScopedRates::kKeep);
  ProfileDelta old_charged = Charged("unlock_lifetime.mutex.old");
  ProfileDelta fresh_charged = Charged("unlock_lifetime.mutex.fresh");
  const Outcome out = Rounds<lockprof::Mutex, MutexReleases>();
  EXPECT_EQ(out.rounds, kRounds) << "threads could not be pinned, or the waiter never slept";
  EXPECT_EQ(out.modified, 0) << "of " << kRounds << " reused locks";
  EXPECT_GT(old_charged.Get(), 0);
  EXPECT_EQ(fresh_charged.Get(), 0);
}

// The same three releases, with the lock's name in the object that dies
// with it: the release reads its copy, never the name, once released.
template <typename Lock, typename Ops>
void ExpectTheOldNameCharged() {
  ScopedRates rates(1, 1, ScopedRates::kKeep);
  using Member = InNamed<Lock, Ops>;
  ProfileDelta old_charged = Charged(Member::kOld);
  ProfileDelta fresh_charged = Charged(Member::kFresh);
  const Outcome out = Rounds<Named<Lock>, Member>();
  EXPECT_EQ(out.rounds, kRounds) << "threads could not be pinned, or the waiter never slept";
  EXPECT_EQ(out.modified, 0) << "of " << kRounds << " reused locks";
  EXPECT_GT(old_charged.Get(), 0);
  EXPECT_EQ(fresh_charged.Get(), 0) << "the old section was charged under the name written since";
}

TEST(UnlockLifetimeTest, MutexUnlockReadsNoNameInTheObjectItFreed) {
  ExpectTheOldNameCharged<lockprof::Mutex, MutexReleases>();
}

TEST(UnlockLifetimeTest, WriterUnlockReadsNoNameInTheObjectItFreed) {
  ExpectTheOldNameCharged<lockprof::SharedMutex, WriterReleases>();
}

TEST(UnlockLifetimeTest, LastReaderUnlockReadsNoNameInTheObjectItFreed) {
  ExpectTheOldNameCharged<lockprof::SharedMutex, ReaderReleases>();
}

// A CondVar may be destroyed once its waiters are notified (condvar.h); a
// notified waiter records its wait after that, under a name it copied
// before: not the bytes a fresh CondVar in the same object wrote since.
// The notifying thread runs on the waiter's CPU at a higher priority, so it
// destroys and rebuilds before the waiter records.
TEST(UnlockLifetimeTest, ANotifiedWaiterReadsNoNameInTheCondVarFreed) {
  ScopedRates rates(ScopedRates::kKeep, 1, ScopedRates::kKeep);
  using NamedCondVar = Named<lockprof::CondVar>;
  ProfileDelta old_waits("block", 1, "", {{"lock", "unlock_lifetime.cv.old"}});
  ProfileDelta fresh_waits("block", 1, "", {{"lock", "unlock_lifetime.cv.fresh"}});
  int pinned_rounds = 0;
  for (int round = 0; round < kRounds; ++round) {
    alignas(NamedCondVar) unsigned char storage[sizeof(NamedCondVar)];
    NamedCondVar* old = new (storage) NamedCondVar("unlock_lifetime.cv.old");
    lockprof::Mutex mu;
    bool ready = false;
    std::atomic<pid_t> waiter_tid{0};
    std::atomic<bool> pinned{true};
    std::thread waiter([&] {
      if (lockprof::testing::PinToFirstCpu() < 0 || !lockprof::testing::RunAtIdlePriority()) {
        pinned = false;
      }
      std::unique_lock<lockprof::Mutex> l(mu);
      waiter_tid = lockprof::testing::ThisThreadId();
      old->mu.wait(l, [&] { return ready; });
    });
    std::thread notifier([&] {
      if (lockprof::testing::PinToFirstCpu() < 0) pinned = false;
      while (waiter_tid.load() == 0) std::this_thread::yield();
      if (!lockprof::testing::WaitUntilAsleep(waiter_tid.load())) pinned = false;
      {
        std::lock_guard<lockprof::Mutex> l(mu);
        ready = true;
      }
      old->mu.notify_all();
      old->~NamedCondVar();
      new (storage) NamedCondVar("unlock_lifetime.cv.fresh");
    });
    notifier.join();
    waiter.join();
    std::launder(reinterpret_cast<NamedCondVar*>(storage))->~NamedCondVar();
    pinned_rounds += pinned.load();
  }
  EXPECT_EQ(pinned_rounds, kRounds) << "threads could not be pinned, or the waiter never slept";
  EXPECT_GT(old_waits.Get(), 0);
  EXPECT_EQ(fresh_waits.Get(), 0) << "a wait was recorded under the name written since";
}

// The copy keys the profile tables by the name's own address: threads that
// release the same lock at the same stack share one sample. Keyed by the
// copy's (a different stack address on every thread), each thread had a
// sample of its own, and a busy program filled the tables so much sooner.
ABSL_ATTRIBUTE_NOINLINE void HoldFromManyThreads(lockprof::Mutex& mu) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&mu] {
      for (int i = 0; i < 10; ++i) {
        std::lock_guard<lockprof::Mutex> l(mu);
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

TEST(UnlockLifetimeTest, ThreadsShareTheSampleOfACopiedName) {
  ScopedRates rates(ScopedRates::kKeep, ScopedRates::kKeep, 1);
  static lockprof::Mutex mu("unlock_lifetime.shared_sample");
  HoldFromManyThreads(mu);
  const auto profile = lockprof::testing::FetchProfile("hold");
  const auto samples = lockprof::testing::SamplesForLock(profile, "unlock_lifetime.shared_sample");
  ASSERT_FALSE(samples.empty());
  // One sample per stack (the threads' stacks are one, but where a
  // sanitizer's runtime starts threads differently).
  std::set<std::vector<uint64_t>> stacks;
  for (const auto* sample : samples) {
    EXPECT_TRUE(stacks.emplace(sample->location_id().begin(), sample->location_id().end()).second)
        << "two samples of one stack and lock";
  }
  EXPECT_EQ(lockprof::testing::SumValuesWithLabel(profile, 0, "lock",
                                                  "unlock_lifetime.shared_sample"),
            80);
}

}  // namespace
