// lockprof::Mutex: a drop-in std::mutex that profiles its own contention.
//
// Mutex has std::mutex's API (lock, try_lock, unlock) and works with
// std::lock_guard, std::unique_lock, std::scoped_lock and
// std::condition_variable_any (and lockprof::CondVar). It is not recursive,
// not copyable and not movable. Its default constructor is constexpr, so a
// global Mutex needs no dynamic initialisation and works before main.
//
// Cost. An uncontended lock is one compare-and-swap plus one thread-local
// decrement (the hold sampler's countdown); an uncontended unlock is one
// load and one compare-and-swap. No clock is read and nothing is recorded unless
// threads actually wait, or the acquisition was picked by the hold sampler
// (about 1 in SetHoldProfileRate() acquisitions).
//
// Size: 24 bytes (std::mutex is 40, absl::Mutex 8): the lock word, the hold
// sampler's mark and the name. The bookkeeping of threads asleep on it
// lives in a process-wide table keyed by its address
// (internal/waiter_table.h), touched only by sleepers and the releases
// that wake them.
//
// What is recorded when threads contend (see sampling.h for the rates):
//  * Mutex profile (/debug/pprof/mutex): each unlock is charged, exactly, the
//    time every waiter spent waiting during the critical section it ends, at
//    the unlocking thread's stack — the code whose critical section made
//    others wait. A 50 ms hold while three threads wait is charged 150 ms.
//  * Block profile (/debug/pprof/block): each wait, at the waiter's stack.
//  * Hold profile (/debug/pprof/hold): sampled critical sections, contended
//    or not, at the releasing stack.
// Only waits that slept are recorded, in the profiles and in the wait
// histogram: a waiter spins 100-112 `pause` instructions first (a couple of
// microseconds; internal/spin_backoff.h), and a wait that ends there is in
// neither (it is CPU time under LockSlow in a CPU profile). Where the
// holder re-takes the lock at once, the "wanted" mark below makes most
// waits end in the spin. Every wait, spun or slept, is counted in
// lockprof_lock_waits_total (before its first poll, in the waiter's time).
// Stack capture and aggregation run after the lock is released, so they
// never lengthen a critical section: a waiter takes its stack before it
// sleeps and records its block event when it releases the lock it waited
// for (internal/deferred_block.h); until then the event is parked with the
// thread, and that unlock takes the slow path.
//
// Fairness: like std::mutex on Linux, an unlocking thread does not hand the
// lock to a waiter; a running thread may take it first (which keeps
// throughput high). A waiter that loses retries. But a waiter that has spun
// for about a microsecond (kLongWait pauses) marks the lock wanted, and until
// a waiter takes it, threads that have waited less (the releasing thread
// coming back for it, typically) stand aside: so a thread that re-takes the
// lock at once cannot make a spinning waiter lose every poll and sleep. The
// mark also makes unlock() take its slow path. try_lock() does not stand
// aside: it takes a free lock and clears the mark, which the waiter, still
// spinning, sets again. The mark's setter may be descheduled, or absent
// altogether in a fork()ed child, and try_lock() must not keep failing on a
// lock that nobody holds.
//
// Where a wait ends: at the last release that settled the waiter's waiting
// (internal/waiter_table.h), normally the release that let it in, as in
// Go's block profile. What follows, until the woken thread runs and takes
// the lock, is in no profile: the scheduler's delay in running it, and the
// section of a thread that barged in ahead of it and released before it
// ran (that unlock's fast path cannot see the sleeper, who has not marked
// the lock again; a mark kept across the release, so that such a section
// is settled too, made every unlock under sustained contention slow and
// cost 2.5-4.5x of contended throughput: RELIABILITY.md, "The lock
// protocol"). So every nanosecond of waiting in the block profile is
// charged to exactly one release in the mutex profile: with every rate at
// 1 the two totals are equal (barging_exactness_test).
//
// Misuse, checked the same way in every build (release, debug and the
// sanitizer builds alike; the checks live on slow paths and cost the fast
// path nothing):
//  * unlock() of a Mutex that is not locked aborts with
//    "lockprof: unlock of unlocked Mutex";
//  * AssertHeld() on a Mutex that is not locked aborts with
//    "lockprof: Mutex::AssertHeld: mutex is not locked".
// Not detected, in any build: unlocking a Mutex that another thread locked
// (undefined behaviour, as with std::mutex), and locking it twice on one
// thread (that thread waits forever, as with std::mutex).
//
// Lifetime: the constexpr constructor and a destructor that leaves the lock
// as it was make a global Mutex usable from any static initialiser and any
// static destructor.
// fork(): in the child, a Mutex that was unlocked, or held by the thread
// that forked, works normally (the child may unlock it); one held by another
// thread stays locked, as any mutex would. Waits of the parent's threads are
// never charged in the child (see internal/waiter_table.h).
#ifndef LOCKPROF_PRIMITIVES_MUTEX_H_
#define LOCKPROF_PRIMITIVES_MUTEX_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "lockprof/agent/base/export.h"
#include "lockprof/agent/record/lock_lifetime.h"
#include "lockprof/agent/record/sampler.h"
#include "lockprof/primitives/lock_name.h"

namespace lockprof {

class ABSL_LOCKABLE LOCKPROF_EXPORT Mutex {
 public:
  constexpr Mutex() = default;
  // `name` (a string literal or const array: see lock_name.h) labels this
  // lock's samples lock="<name>" in every profile and metric, so that
  // `go tool pprof -tagfocus=lock=<name>` isolates it. Not copied.
  explicit constexpr Mutex(LockName name) : name_(name.get()) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  // Leaves the lock usable (a global Mutex still works in later static
  // destructors); it only tells lock-order checking, if that ever ran, to
  // forget this address (lock_order.h).
  ~Mutex() { agent::OnLockDestroyed(this); }

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    uint32_t expected = kUnlocked;
    if (__builtin_expect(
            !state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                            std::memory_order_relaxed),
            0)) {
      LockSlow();
    }
    if (__builtin_expect(agent::HoldCountdownExpired(), 0)) AcquireHook(false);
  }

  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    uint32_t expected = kUnlocked;
    if (!state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed) &&
        // Free but marked wanted: taken, and the mark cleared, as a long
        // waiter does (see Fairness above).
        ((expected & kHeld) != kUnlocked ||
         !state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                         std::memory_order_relaxed))) {
      return false;
    }
    if (__builtin_expect(agent::HoldCountdownExpired(), 0)) AcquireHook(true);
    return true;
  }

  void unlock() ABSL_UNLOCK_FUNCTION() {
    // hold_start_ is written only by the holder, so this plain read is
    // ordered by the lock itself.
    if (__builtin_expect(hold_start_ == 0, 1)) {
      uint32_t expected = kLocked;
      if (__builtin_expect(
              state_.compare_exchange_strong(expected, kUnlocked, std::memory_order_release,
                                             std::memory_order_relaxed),
              1)) {
        return;
      }
    }
    UnlockSlow();
    // Keeps the call above from becoming a tail call (a jump) when unlock()
    // ends the caller's function: the caller's frame must stay on the stack,
    // or the profile would charge its caller instead.
    asm volatile("");
  }

  // Abseil-style spellings, for code moving from absl::Mutex.
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { lock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return try_lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { unlock(); }
  // Documents (to -Wthread-safety) that the caller holds the lock; checks
  // only that somebody does.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK();

  const char* name() const { return name_; }

 private:
  friend class CondVar;

  // state_'s low two bits (kHeld): kUnlocked, kLocked (no thread sleeping on
  // it), or kContended (locked, and threads may be sleeping on it: unlock
  // must wake one); and the kWanted bit, held or not.
  static constexpr uint32_t kUnlocked = 0;
  static constexpr uint32_t kLocked = 1;
  static constexpr uint32_t kContended = 2;
  static constexpr uint32_t kHeld = 3;  // The bits above.
  // Set by a spinner that has waited kLongWait pauses (LockSlow): kept
  // across releases, and a thread that has waited less does not take the
  // lock while it is set, so the fast paths fail and go slow.
  static constexpr uint32_t kWanted = 4;
  // A spinner looks at the lock word three times before it marks it: at
  // once, after kSecondLook pauses, and after kLongWait pauses (about 0.9 us
  // on the AMD EPYC the benchmarks ran on), where it sets kWanted if the lock
  // is still held. Each look pulls the lock's cache line from the holder,
  // and the looks early in a wait land while a new holder works: looking
  // after 1, 3, 7, 15 and 31 pauses as well ran an empty critical section at
  // 0.69-0.81x std::mutex's throughput; three looks, at 1.05-1.14x in the
  // same rounds (1.01-1.06x in 30 later ones).
  // Looking only at once and at kLongWait was faster still where the holder
  // re-takes the lock at once, but left a waiter for a lock released early
  // in its wait spinning up to kLongWait pauses for nothing (BENCHMARKS.md,
  // "Three looks before the mark"). Marking after 79 pauses instead of about
  // 47 left the cache workload's p99 acquire latency at 1.35-1.47x
  // std::mutex's against 0.99-1.11x.
  static constexpr int kSecondLook = 16;
  static constexpr int kLongWait = 48;

  void LockSlow();
  void UnlockSlow();
  // UnlockSlow's general case: settling, the release, wake-up, recording
  // (`frame`: UnlockSlow's own).
  void ReleaseAndRecord(const void* frame, bool forgotten);
  // After acquiring, when the hold sampler's countdown expired (or holders
  // are tracked): internal/acquire_hook.h.
  void AcquireHook(bool tried);

  std::atomic<uint32_t> state_{kUnlocked};
  // Monotonic time the current hold started, if the hold sampler picked it;
  // internal::kSlowUnlockOnly if not but the holder waited (its block event
  // is recorded at the release); internal::kTrackedUnlockOnly while lock
  // tracking is on (kept between holds: internal/hold_sample.h); else 0.
  // Nonzero sends unlock() slow.
  int64_t hold_start_ = 0;
  const char* name_ = nullptr;
};

// Scoped lock over a Mutex, annotated for -Wthread-safety (std::lock_guard is
// not), as absl::MutexLock:
//   lockprof::MutexLock lock(&mu_);
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace lockprof

#endif  // LOCKPROF_PRIMITIVES_MUTEX_H_
