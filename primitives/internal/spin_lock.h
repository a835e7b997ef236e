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

#include "lockprof/primitives/internal/futex.h"

namespace lockprof::internal {

class SpinLock {
 public:
  constexpr SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void Lock() {
    for (int spins = 0; word_.exchange(1, std::memory_order_acquire) != 0; ++spins) {
      if (spins < 64) {
        SpinPause();
      } else {
        sched_yield();
      }
    }
  }
  void Unlock() { word_.store(0, std::memory_order_release); }

 private:
  std::atomic<uint32_t> word_{0};
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_SPIN_LOCK_H_
