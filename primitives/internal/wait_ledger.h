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
// A waiter reads its start time before it enters (it captures its stack in
// between), so a settle may fall between the two: Enter() then counts the
// waiter from the settle, exactly as Leave() will, and the ledger stays
// balanced.
//
// fork(): the child's copy may count waiters that are threads of the
// parent, which do not exist in the child. The first use in the child (see
// SpinLock::Lock) forgets them and starts empty. A lock that also counts its
// class-0 waiters in its own state word (SharedMutex counts queued readers
// in its reader count) names that word at construction, and the ledger takes
// the forgotten waiters out of it too: otherwise they would hold the lock in
// the child forever.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_WAIT_LEDGER_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_WAIT_LEDGER_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "lockprof/primitives/internal/spin_lock.h"

namespace lockprof::internal {

template <int kClasses>
class WaitLedger {
 public:
  constexpr WaitLedger() = default;
  // `also_counted`: a word that counts each class-0 waiter as one unit in
  // its low bits (see above); it must outlive the ledger.
  constexpr explicit WaitLedger(std::atomic<uint64_t>* also_counted)
      : also_counted_(also_counted) {}

  // A thread of class `c` starts waiting at time `start`.
  void Enter(int c, int64_t start) {
    Lock();
    ++waiters_[c];
    charged_from_sum_[c] += uint64_t(std::max(start, last_settle_));
    lock_.Unlock();
  }

  // A thread of class `c` that entered at `start` stops waiting. If no
  // other waiter of class `c` is left, runs `if_last()` while still holding
  // the ledger's lock: a concurrent Enter() of that class then happens
  // entirely before it (and was counted) or entirely after it.
  template <typename F>
  void Leave(int c, int64_t start, F if_last) {
    Lock();
    --waiters_[c];
    charged_from_sum_[c] -= uint64_t(std::max(start, last_settle_));
    if (waiters_[c] == 0) if_last();
    lock_.Unlock();
  }

  // Charges all waiting up to `now`: per class, the total nanoseconds waited
  // since each waiter's charged-from time, added to charged[c] (which the
  // caller zeroes once per release). Adding, not assigning: a release that
  // settles more than once (SharedMutex's writer retries its release when
  // a reader queues meanwhile, and settles again) is charged the sum, and
  // every nanosecond moved out of the ledger lands in exactly one charge.
  void Settle(int64_t now, int64_t charged[kClasses]) {
    Lock();
    for (int c = 0; c < kClasses; ++c) {
      uint64_t all_now = uint64_t(waiters_[c]) * uint64_t(now);
      charged[c] += int64_t(all_now - charged_from_sum_[c]);
      charged_from_sum_[c] = all_now;
    }
    last_settle_ = std::max(last_settle_, now);
    lock_.Unlock();
  }

 private:
  // Takes the ledger's lock; in a fork()ed child, first forgets the
  // parent's waiters.
  void Lock() {
    if (__builtin_expect(lock_.Lock(), 0)) {
      if (also_counted_ != nullptr && waiters_[0] > 0) {
        also_counted_->fetch_sub(uint64_t(waiters_[0]), std::memory_order_relaxed);
      }
      for (int c = 0; c < kClasses; ++c) waiters_[c] = 0, charged_from_sum_[c] = 0;
      last_settle_ = 0;
    }
  }

  SpinLock lock_;
  std::atomic<uint64_t>* also_counted_ = nullptr;
  int32_t waiters_[kClasses] = {};
  // Sums of timestamps, in modular arithmetic: n * now - sum is exact even
  // when n * now itself would overflow.
  uint64_t charged_from_sum_[kClasses] = {};
  int64_t last_settle_ = 0;
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_WAIT_LEDGER_H_
