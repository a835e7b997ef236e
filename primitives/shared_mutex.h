// lockprof::SharedMutex: a drop-in std::shared_mutex that profiles both
// kinds of waiting — readers waiting for a writer, writers waiting for
// readers (or for another writer).
//
// API: std::shared_mutex's (lock, try_lock, unlock, lock_shared,
// try_lock_shared, unlock_shared), so it works with std::unique_lock,
// std::shared_lock, std::scoped_lock and std::condition_variable_any. Not
// recursive, not copyable, not movable; the constructors are constexpr, so a
// global SharedMutex needs no dynamic initialisation.
//
// Fairness (Go's sync.RWMutex). A writer that is waiting blocks new
// readers, so a stream of readers cannot starve it; when a writer unlocks,
// every reader that queued during its hold gets in before the next writer
// does, so a stream of writers cannot starve readers either. The price, as
// in Go: a thread that takes the read lock recursively (lock_shared while it
// already holds it shared) deadlocks if a writer started waiting in between
// — the writer waits for the first read hold, the second read waits for the
// writer. Do not lock shared recursively.
//
// Cost. Uncontended lock_shared is one atomic add plus the hold sampler's
// thread-local countdown; uncontended unlock_shared is one thread-local test
// (a sampled read hold of this thread?) and one atomic subtract — no more
// than std::shared_mutex (a glibc rwlock), and readers write no shared word
// but the one they must (tools/bench/shared_mutex_bench.cc). Uncontended
// lock and unlock are a load and a compare-and-swap each, on the one word
// that readers use too (the writer is a bit of it).
//
// Size: 40 bytes (std::shared_mutex is 56). Threads asleep on it are kept
// in a process-wide table keyed by its address (internal/waiter_table.h).
//
// Lifetime: as with std::shared_mutex, a thread may destroy the lock as
// soon as it can lock and unlock it, while the thread whose release let it
// in is still inside unlock() or unlock_shared(): every unlock's last
// access to the lock is the atomic operation that releases it (what it
// records afterwards was copied out before; see shared_mutex.cc).
//
// What is recorded when threads wait (see sampling.h for the rates); every
// sample carries the label mode="read" (a reader waited) or mode="write" (a
// writer waited), so `go tool pprof -tagfocus=mode=read` splits them, and
// lock="<name>" when the lock was named:
//  * Mutex profile: the release that let the waiters in is charged, exactly,
//    the time they waited during the critical section it ends — a writer's
//    unlock for the readers that queued behind it and the writers waiting
//    for it; the last reader's unlock_shared that lets a waiting writer in
//    for that writer's wait and for the readers queued behind the writer.
//    A slow writer under a read-mostly lock therefore shows up as its own
//    critical section, charged every reader's wait.
//  * Block profile: each wait, at the waiter's stack, with its mode.
//  * Hold profile: sampled critical sections, exclusive (mode="write") and
//    shared (mode="read"), at the releasing stack.
// As with Mutex, only waits that slept are recorded: one that ends while
// spinning (111 `pause` instructions: internal/spin_backoff.h) is in no
// profile, only in lockprof_lock_waits_total, which counts every wait. A
// waiter that finds the lock held while another waiter sleeps on it sleeps
// at once, without spinning.
// Stacks are captured and events recorded after the lock word is released,
// never inside the critical section measured.
// A wait ends at the last release that settled it, normally the one that
// let the waiter in (see mutex.h): a writer that barges in past a woken
// writer, and releases before that one runs and marks the lock again,
// settles nothing, and the sleeper's waiting during its section is in
// neither profile. The mutex and block totals agree.
//
// Misuse: unlock of a SharedMutex that is not locked, and unlock_shared of
// one not locked shared, abort with "lockprof: unlock of unlocked
// SharedMutex" / "lockprof: unlock_shared of unlocked SharedMutex" in every
// build, while no thread waits for it; with waiters queued, the word that
// says so is theirs, and the wrong unlock is not always caught (Go's
// RWMutex has the same gap). More than 2^27 read holds at once (a read
// lock taken in a loop and never released) abort with "lockprof:
// SharedMutex: 2^27 read holds at once"; try_lock_shared returns false
// there. Other misuse (unlocking from a thread that does not hold it) is
// undefined behaviour, as with std::shared_mutex.
#ifndef LOCKPROF_PRIMITIVES_SHARED_MUTEX_H_
#define LOCKPROF_PRIMITIVES_SHARED_MUTEX_H_

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "lockprof/agent/base/export.h"
#include "lockprof/agent/record/lock_lifetime.h"
#include "lockprof/agent/record/sampler.h"
#include "lockprof/primitives/lock_name.h"

namespace lockprof {

namespace internal {
class BlockedWait;
}  // namespace internal

class ABSL_LOCKABLE LOCKPROF_EXPORT SharedMutex {
 public:
  constexpr SharedMutex() = default;
  // `name` (a string literal or const array: see lock_name.h) labels this
  // lock's samples lock="<name>"; `shard` (>= 0) adds the numeric label
  // shard=<shard> (lockprof::ShardedMap numbers its shards' locks so).
  // Neither is copied.
  explicit constexpr SharedMutex(LockName name, int32_t shard = -1)
      : name_(name.get()), shard_(shard) {}
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;
  // Leaves the lock usable; tells lock-order checking, if that ever ran, to
  // forget this address (lock_order.h).
  ~SharedMutex() { agent::OnLockDestroyed(this); }

  // Exclusive (writer) side.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    uint64_t s = state_.load(std::memory_order_relaxed);
    // Free (no writer, no reader): set kWriter. Otherwise wait.
    if (__builtin_expect(uint32_t(s) != 0 || !state_.compare_exchange_strong(
                                                 s, s | kWriter, std::memory_order_acquire,
                                                 std::memory_order_relaxed),
                         0)) {
      LockSlow();
    }
    if (__builtin_expect(agent::HoldCountdownExpired(), 0)) AcquireHook(false);
  }

  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true);

  void unlock() ABSL_UNLOCK_FUNCTION() {
    // hold_start_ is written only by the holder, so this plain read is
    // ordered by the lock itself.
    if (__builtin_expect(hold_start_ == 0, 1)) {
      uint64_t s = state_.load(std::memory_order_relaxed);
      // Nobody queued or asleep: re-open to readers and start a new epoch
      // in the one update that releases the lock, and that is the last
      // access to *this (a thread it lets in may destroy the lock).
      if (__builtin_expect(uint32_t(s) == kWriter, 1) &&
          state_.compare_exchange_strong(s, s + kEpochOne - kWriter, std::memory_order_release,
                                         std::memory_order_relaxed)) {
        return;
      }
    }
    UnlockSlow();
    // Keeps the call above from becoming a tail call (a jump) when unlock()
    // ends the caller's function: the caller's frame must stay on the stack,
    // or the profile would charge its caller instead.
    asm volatile("");
  }

  // Shared (reader) side.
  void lock_shared() ABSL_SHARED_LOCK_FUNCTION() {
    const uint64_t old = state_.fetch_add(1, std::memory_order_acquire);
    if (__builtin_expect((old & (kWriter | kReaderLimit)) != 0, 0)) LockSharedSlow(old);
    if (__builtin_expect(agent::HoldCountdownExpired(), 0)) SharedAcquireHook(false);
  }

  bool try_lock_shared() ABSL_SHARED_TRYLOCK_FUNCTION(true);

  void unlock_shared() ABSL_UNLOCK_FUNCTION() {
    if (__builtin_expect(agent::tls_state.shared_hold_samples == 0, 1)) {
      const uint64_t old = state_.fetch_sub(1, std::memory_order_release);
      // Fast iff no writer waits and the count was >= 1: with the writer bit
      // clear and a count of 1..kCountMask, old - 1 (low half) < kCountMask.
      if (__builtin_expect(uint32_t(old) - 1 < kCountMask, 1)) return;
      UnlockSharedSlow(old);
    } else {
      UnlockSharedSlow(kNotReleased);
    }
    asm volatile("");  // No tail call: see unlock().
  }

  // Abseil-style spellings, for code moving from absl::Mutex.
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { lock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return try_lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { unlock(); }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { lock_shared(); }
  bool ReaderTryLock() ABSL_SHARED_TRYLOCK_FUNCTION(true) { return try_lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { unlock_shared(); }
  // Document (to -Wthread-safety) that the caller holds the lock; they check
  // only that some writer (AssertHeld) or some thread (AssertReaderHeld)
  // does.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK();
  void AssertReaderHeld() const ABSL_ASSERT_SHARED_LOCK();

  const char* name() const { return name_; }
  int32_t shard() const { return shard_; }

 private:
  // state_: the whole lock, one word. Low 32 bits: bit 30 (kWriter) is set
  // while a writer holds the lock or waits for the readers inside to leave;
  // bits 0-27 count readers — inside, or (while kWriter is set) queued
  // behind the writer; kReadersAsleep: queued readers may sleep on the
  // epoch; kWritersAsleep: writers may sleep on the epoch for kWriter
  // (they are in the waiter table). High 32 bits: the epoch, bumped by every writer
  // unlock; sleepers sleep on it (a futex on the high half, readers and
  // writers told apart by futex bitsets). The writer's unlock clears kWriter
  // and both asleep bits, admits every queued reader (they are already
  // counted, so the next writer has to wait for them — that is the
  // fairness) and bumps the epoch: one atomic update, its last access.
  // A woken writer that has to sleep again sets kWritersAsleep again; one
  // that takes the lock after sleeping sets it with kWriter (others may
  // sleep), and the last writer to leave the table clears it, as Mutex
  // does with kContended.
  static constexpr uint64_t kWriter = uint64_t{1} << 30;
  static constexpr uint64_t kWritersAsleep = uint64_t{1} << 29;
  static constexpr uint64_t kReadersAsleep = uint64_t{1} << 28;
  static constexpr uint32_t kCountMask = uint32_t(kReadersAsleep) - 1;
  // A count that reaches this goes slow and aborts, a bit short of the
  // count's top, so that no count carries into the flags above it (at
  // 2^28 holds it did: the lock read as free, and a writer got in).
  static constexpr uint64_t kReaderLimit = uint64_t{1} << 27;
  static constexpr uint64_t kEpochOne = uint64_t{1} << 32;
  // Never a value of state_ (bit 31 is always clear): "not yet released".
  static constexpr uint64_t kNotReleased = ~uint64_t{0};

  // Waiter table classes.
  static constexpr int kReaders = 0;
  static constexpr int kWriters = 1;

  // writer_sem_: how the last reader to leave lets a waiting writer in.
  static constexpr uint32_t kNotPosted = 0;
  static constexpr uint32_t kPosted = 1;
  static constexpr uint32_t kWriterAsleep = 2;

  void LockSlow();
  void UnlockSlow();
  // UnlockSlow's general case (`frame`: UnlockSlow's own), as Mutex's.
  void ReleaseAndRecord(const void* frame, bool forgotten);
  void LockSharedSlow(uint64_t old);
  void UnlockSharedSlow(uint64_t old);
  // Sets kWriter once it is clear, sleeping for it; returns the readers
  // inside, which the writer must await.
  uint32_t AcquireWriterBitAsleep(internal::BlockedWait& wait);
  // Whether those readers have all left already (then nobody posts).
  bool ReadersGone(uint32_t readers_inside);
  bool PostedAfterSpinning();
  void SleepUntilPosted(internal::BlockedWait& wait);
  // After acquiring, when the hold sampler's countdown expired (or holders
  // are tracked): internal/acquire_hook.h.
  void AcquireHook(bool tried);
  void SharedAcquireHook(bool tried);
  std::atomic<uint32_t>* EpochWord();

  std::atomic<uint64_t> state_{0};
  // Readers the waiting writer still waits for (Go's readerWait): the writer
  // adds the count it saw, each leaving reader subtracts one; it may go
  // negative first. The reader that brings it to zero posts writer_sem_.
  std::atomic<int32_t> departing_{0};
  std::atomic<uint32_t> writer_sem_{kNotPosted};
  // Readers (class 0) asleep in the waiter table are counted in state_ too:
  // a fork()ed child takes the parent's out of it (internal/waiter_table.h).
  static_assert(kReaders == 0, "the waiter table corrects state_ for its class-0 waiters");
  // Monotonic time the current exclusive hold started, if sampled;
  // internal::kSlowUnlockOnly if not but the writer waited (its block event
  // is recorded at the release); internal::kTrackedUnlockOnly while lock
  // tracking is on; else 0 (as Mutex's). Nonzero sends unlock() slow.
  int64_t hold_start_ = 0;
  const char* name_ = nullptr;
  int32_t shard_ = -1;
};

}  // namespace lockprof

#endif  // LOCKPROF_PRIMITIVES_SHARED_MUTEX_H_
