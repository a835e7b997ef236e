// SpinLock: the tiny lock lockprof's primitives use for their own
// bookkeeping (wait ledgers, condition-variable queues).
//
// Held for a handful of instructions at a time and only on contended paths,
// so spinning beats sleeping; a holder that was preempted is waited out with
// sched_yield() rather than burning its time slice.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_SPIN_LOCK_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_SPIN_LOCK_H_

#include <sched.h>

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
    // The word holds its holder's fork generation (odd, so never 0): a word
    // from another generation was left by a thread of an ancestor process.
    const uint32_t generation = agent::ForkGeneration();
    const uint32_t mine = generation << 1 | 1;
    for (int spins = 0;; ++spins) {
      uint32_t seen = word_.load(std::memory_order_relaxed);
      if (seen != mine && word_.compare_exchange_weak(seen, mine, std::memory_order_acquire,
                                                      std::memory_order_relaxed)) {
        break;
      }
      if (spins < 64) {
        SpinPause();
      } else {
        sched_yield();
      }
    }
    if (__builtin_expect(generation_ == generation, 1)) return false;
    generation_ = generation;
    return true;
  }
  void Unlock() { word_.store(0, std::memory_order_release); }

 private:
  std::atomic<uint32_t> word_{0};
  uint32_t generation_ = 0;  // Fork generation of the guarded data.
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_SPIN_LOCK_H_
