// WaitLedger: exact accounting of who waited during which critical section.
//
// The mutex profile charges each release with the time every waiter spent
// waiting during the critical section it ends: for each waiter, from the
// later of its wait start and the section's start, to the release. A ledger
// holds, per class of waiter (readers, writers), the number of waiters and the
// sum of their "charged-from" times. Settle(now) returns
//   n * now - sum
// (the exact total) and moves every waiter's charged-from time to `now`, so
// the next release is charged only what happens after it. A waiter that
// leaves subtracts max(its start, the last settle time), which is its current
// charged-from time. Nothing is approximated (Go averages the head and tail
// waiters instead).
//
// Only contended paths touch a ledger, under its spin lock, for a few
// instructions at a time.
//
// fork(): the child's copy may count waiters (and even hold the spin lock
// for) threads of the parent, which do not exist in the child. The ledger
// remembers the fork generation its data belongs to; the first use in the
// child sees another generation, takes the lock over and starts empty.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_WAIT_LEDGER_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_WAIT_LEDGER_H_

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "lockprof/agent/fork.h"
#include "lockprof/primitives/internal/futex.h"

namespace lockprof::internal {

template <int kClasses>
class WaitLedger {
 public:
  constexpr WaitLedger() = default;

  // A thread of class `c` starts waiting at time `start`.
  void Enter(int c, int64_t start) {
    Lock();
    ++waiters_[c];
    charged_from_sum_[c] += uint64_t(start);
    Unlock();
  }

  // A thread of class `c` that entered at `start` stops waiting. If no
  // waiter of any class is left, runs `if_last()` while still holding the
  // ledger's lock: a concurrent Enter() then happens entirely before it (and
  // was counted) or entirely after it.
  template <typename F>
  void Leave(int c, int64_t start, F if_last) {
    Lock();
    --waiters_[c];
    charged_from_sum_[c] -= uint64_t(std::max(start, last_settle_));
    int left = 0;
    for (int i = 0; i < kClasses; ++i) left += waiters_[i];
    if (left == 0) if_last();
    Unlock();
  }

  // Charges all waiting up to `now`: per class, the total nanoseconds waited
  // since each waiter's charged-from time, into charged[c].
  void Settle(int64_t now, int64_t charged[kClasses]) {
    Lock();
    for (int c = 0; c < kClasses; ++c) {
      uint64_t all_now = uint64_t(waiters_[c]) * uint64_t(now);
      charged[c] = int64_t(all_now - charged_from_sum_[c]);
      charged_from_sum_[c] = all_now;
    }
    last_settle_ = std::max(last_settle_, now);
    Unlock();
  }

  int waiters(int c) const { return waiters_[c]; }

 private:
  void Lock() {
    // The lock word holds its holder's fork generation (odd, so never 0): a
    // word from another generation was left by a thread of the parent.
    const uint32_t generation = agent::ForkGeneration();
    const uint32_t mine = generation << 1 | 1;
    for (int spins = 0;; ++spins) {
      uint32_t seen = lock_.load(std::memory_order_relaxed);
      if (seen != mine && lock_.compare_exchange_weak(seen, mine, std::memory_order_acquire,
                                                      std::memory_order_relaxed)) {
        break;
      }
      // The holder runs a handful of instructions; yield if it was preempted.
      if (spins < 64) {
        SpinPause();
      } else {
        sched_yield();
      }
    }
    if (__builtin_expect(generation_ != generation, 0)) {
      // First use since a fork: every waiter counted was the parent's.
      for (int c = 0; c < kClasses; ++c) waiters_[c] = 0, charged_from_sum_[c] = 0;
      last_settle_ = 0;
      generation_ = generation;
    }
  }
  void Unlock() { lock_.store(0, std::memory_order_release); }

  std::atomic<uint32_t> lock_{0};
  uint32_t generation_ = 0;  // The fork generation of the data below.
  int32_t waiters_[kClasses] = {};
  // Sums of timestamps, in modular arithmetic: n * now - sum is exact even
  // when n * now itself would overflow.
  uint64_t charged_from_sum_[kClasses] = {};
  int64_t last_settle_ = 0;
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_WAIT_LEDGER_H_
