// SpinLock: the tiny lock lockprof's primitives use for their own
// bookkeeping (wait ledgers, condition-variable queues).
//
// Held for a handful of instructions at a time and only on contended paths,
// so a waiter spins briefly first; then it sleeps on a futex, so that a
// holder that was preempted is not waited out by burning time slices (which
// under SCHED_FIFO could livelock: the spinning thread never lets the
// holder run).
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_SPIN_LOCK_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_SPIN_LOCK_H_

#include <atomic>
#include <cstdint>

#include "lockprof/agent/base/fork.h"
#include "lockprof/primitives/internal/futex.h"

namespace lockprof::internal {

class SpinLock {
 public:
  constexpr SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  // Takes the lock. Returns true only the first time it is taken in a
  // fork()ed child after the parent used it: what it guards may describe
  // threads of the parent (queued waiters, say), which do not exist in the
  // child, and the caller must forget them. A lock that a parent thread held
  // at the fork is taken over, not waited for forever.
  bool Lock() {
    // The word holds its holder's fork generation (with kHeld, so never 0):
    // a word from another generation was left by a thread of an ancestor
    // process and counts as free.
    const uint32_t generation = agent::ForkGeneration();
    const uint32_t mine = generation << 2 | kHeld;
    for (int spins = 0; spins < kSpins; ++spins) {
      uint32_t seen = word_.load(std::memory_order_relaxed);
      if (IsFree(seen, mine) && word_.compare_exchange_weak(seen, mine, std::memory_order_acquire,
                                                            std::memory_order_relaxed)) {
        return Taken(generation);
      }
      SpinPause();
    }
    // Sleep. Having slept, take it marked kSleepers: others may sleep too,
    // and the unlock must wake them (it may wake nobody, which is harmless).
    const uint32_t sleeping = mine | kSleepers;
    for (;;) {
      const uint32_t seen = word_.exchange(sleeping, std::memory_order_acquire);
      if (IsFree(seen, mine)) return Taken(generation);
      FutexWait(&word_, sleeping);
    }
  }

  // The release is the last access to the lock: the wake-up that may
  // follow reads no memory (futex.h).
  void Unlock() {
    if (word_.exchange(0, std::memory_order_release) & kSleepers) FutexWake(&word_, 1);
  }

 private:
  static constexpr uint32_t kHeld = 1;
  static constexpr uint32_t kSleepers = 2;
  static constexpr int kSpins = 64;

  // Free: never taken, or last taken in another fork generation.
  static bool IsFree(uint32_t seen, uint32_t mine) {
    return seen == 0 || (seen >> 2) != (mine >> 2);
  }

  bool Taken(uint32_t generation) {
    if (__builtin_expect(generation_ == generation, 1)) return false;
    generation_ = generation;
    return true;
  }

  std::atomic<uint32_t> word_{0};
  uint32_t generation_ = 0;  // Fork generation of the guarded data.
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_SPIN_LOCK_H_
