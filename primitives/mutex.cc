#include "lockprof/primitives/mutex.h"

#include "lockprof/agent/record/record.h"
#include "lockprof/primitives/internal/acquire_hook.h"
#include "lockprof/primitives/internal/blocked_wait.h"
#include "lockprof/primitives/internal/deferred_block.h"
#include "lockprof/primitives/internal/fatal.h"
#include "lockprof/primitives/internal/hold_sample.h"
#include "lockprof/primitives/internal/name_copy.h"
#include "lockprof/primitives/internal/spin_backoff.h"
#include "lockprof/primitives/internal/waiter_table.h"

namespace lockprof {

ABSL_ATTRIBUTE_NOINLINE void Mutex::LockSlow() {
  // Counted before the first poll, in the waiter's time, however it ends.
  agent::CountLockWait(agent::EventTags{name_});
  // Spins first, looking at the lock word at once, after kSecondLook pauses
  // and after kLongWait (internal/spin_backoff.h, and mutex.h on why so few).
  // A running thread re-takes a lock it just released within nanoseconds, so
  // a spinner can lose every look and sleep after its whole spin: the
  // acquisition's tail. A spinner that has waited kLongWait pauses sets
  // kWanted instead, and threads that have waited less leave a released lock
  // to it.
  auto spin =
      internal::SpinBackoff::Looking<kSecondLook, kLongWait>(internal::SpinBackoff::kPauses);
  bool set_wanted = false;
  do {
    uint32_t s = state_.load(std::memory_order_relaxed);
    const bool long_wait = spin.spent() >= kLongWait;
    if ((s & kHeld) == kUnlocked) {
      if ((s & kWanted) != 0 && !long_wait) continue;  // Stands aside.
      // Clears kWanted: a long waiter got the lock, whether the one that set
      // it or another (the setter may have been preempted: a mark left for it
      // would slow every acquisition until it runs).
      if (state_.compare_exchange_weak(s, kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
    } else if (long_wait && (s & kWanted) == 0 &&
               state_.compare_exchange_weak(s, s | kWanted, std::memory_order_relaxed)) {
      set_wanted = true;
      spin.PollEveryPause();  // The release is expected soon: do not miss it.
    }
  } while (spin.Pause());
  // Going to sleep. Every sleeper registers in the waiter table (the clock
  // read is noise next to the futex round trip), so the table knows whether
  // anybody sleeps, and its wait sums stay consistent even if profiling is
  // switched on while threads wait.
  internal::BlockedWait blocked(__builtin_frame_address(0), this, agent::EventTags{name_});
  int64_t counted_from = -1;
  const bool registered =
      internal::Waiters().Enter(this, 0, blocked.start(), nullptr, &counted_from);
  // Marks the lock contended and sleeps until it is free, then takes it,
  // still marked: other sleepers may remain (Leave below knows). While it
  // sleeps the lock keeps a kWanted that a spinner set, but not this
  // thread's own (set_wanted, cleared by the first mark): nobody spins for
  // it any more.
  uint32_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    const bool free = (s & kHeld) == kUnlocked;
    const uint32_t next = free ? kContended : ((set_wanted ? 0 : s & kWanted) | kContended);
    if (s != next && !state_.compare_exchange_weak(s, next, std::memory_order_acquire,
                                                   std::memory_order_relaxed)) {
      continue;
    }
    if (free) break;
    set_wanted = false;
    blocked.Sleep(&state_, next);
    s = state_.load(std::memory_order_relaxed);
  }
  // We own the lock. If nobody else sleeps, go back to kLocked (keeping a
  // kWanted set since) so that our unlock takes the fast path instead of a
  // futex wake for nobody. The block event spans what the mutex profile
  // charged for this wait.
  blocked.Charged(counted_from,
                  internal::Waiters().Leave(this, 0, blocked.start(), registered, [this] {
                    state_.fetch_sub(kContended - kLocked, std::memory_order_relaxed);
                  }));
  blocked.RecordAtRelease(agent::EventTags{name_}, this,
                          [this] { return internal::MarkSlowUnlock(&hold_start_); });
}

ABSL_ATTRIBUTE_NOINLINE void Mutex::UnlockSlow() {
  bool forgotten = false;  // By lock tracking, below.
  if (hold_start_ == internal::kTrackedUnlockOnly) {
    // Only lock tracking made this unlock slow (nothing sampled, nothing
    // parked): the record, then the fast path's release if nobody sleeps.
    // The mark stays for the next hold while tracking is on (hold_sample.h).
    if (!agent::LockTrackingOn()) hold_start_ = 0;
    agent::TrackReleased(this);
    forgotten = true;
    uint32_t expected = kLocked;
    if (state_.compare_exchange_strong(expected, kUnlocked, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return;
    }
  }
  // The rest in a function of its own: this one stays short enough to need
  // no saved registers. Not a tail call, so that `frame` stays valid.
  ReleaseAndRecord(__builtin_frame_address(0), forgotten);
  asm volatile("");
}

// `frame`: UnlockSlow's, for the stacks recorded; `forgotten`: lock
// tracking already knows the lock is released.
ABSL_ATTRIBUTE_NOINLINE void Mutex::ReleaseAndRecord(const void* frame, bool forgotten) {
  // First: the sampled hold ends here, not after our own bookkeeping.
  const int64_t hold_ns = internal::EndHoldSample(&hold_start_);
  // While holders are tracked, this thread no longer holds the lock: said
  // before the release (not after, in the short gap before this thread's
  // next acquisition, where it would let a spinning waiter in more often
  // and cost throughput), as above, unless the tracked path above already
  // did and found the lock contended.
  if (!forgotten) agent::TrackReleased(this);
  const uint32_t seen = state_.load(std::memory_order_relaxed);
  if ((seen & kHeld) == kUnlocked) internal::Fatal("unlock of unlocked Mutex");
  // Class 0 only (a Mutex has no readers); the table settles every class.
  int64_t charged[internal::WaiterTable::kClasses] = {0, 0};
  if ((seen & kHeld) == kContended) internal::Waiters().Settle(this, charged);
  // Copied before the release: a thread that takes the lock right after it
  // may destroy the Mutex (as POSIX allows), and with it a name that is a
  // member of the same object, so nothing below reads *this or the name.
  // The wake-up only passes the address to the kernel; `this` is only a key
  // for parked block events.
  const internal::NameCopy name(name_);
  const agent::EventTags tags = name.Tags();
  // The release keeps kWanted: the long waiter that set it takes the lock next.
  if ((state_.fetch_and(kWanted, std::memory_order_release) & kHeld) == kContended) {
    internal::FutexWake(&state_, 1);
  }
  // Released: from here on nothing we do lengthens the critical section.
  internal::RecordAfterRelease(this, tags, charged[0], hold_ns, frame);
}

ABSL_ATTRIBUTE_NOINLINE void Mutex::AcquireHook(bool tried) {
  internal::AfterExclusiveAcquire(this, agent::EventTags{name_}, tried, &hold_start_,
                                  __builtin_frame_address(0));
}

void Mutex::AssertHeld() const {
  if ((state_.load(std::memory_order_relaxed) & kHeld) == kUnlocked) {
    internal::Fatal("Mutex::AssertHeld: mutex is not locked");
  }
}

}  // namespace lockprof
