#include "lockprof/primitives/mutex.h"

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/primitives/internal/blocked_wait.h"
#include "lockprof/primitives/internal/deferred_block.h"
#include "lockprof/primitives/internal/fatal.h"
#include "lockprof/primitives/internal/futex.h"
#include "lockprof/primitives/internal/hold_sample.h"

namespace lockprof {

namespace {
// Spins before sleeping, while no thread sleeps on the lock: a critical
// section of a few hundred nanoseconds ends sooner than a futex round trip
// would. Once threads sleep, spinning would only compete with the one the
// next unlock wakes.
constexpr int kSpinLimit = 100;
}  // namespace

ABSL_ATTRIBUTE_NOINLINE void Mutex::LockSlow() {
  for (int i = 0; i < kSpinLimit; ++i) {
    uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & kLocked) == 0) {
      if (state_.compare_exchange_weak(s, s | kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    if (s & kParked) break;
    internal::SpinPause();
  }
  // Going to sleep. Every sleeper registers in the ledger (the clock read is
  // noise next to the futex round trip) before it sets kParked, so a holder
  // that sees kParked finds it there, and the ledger's wait sums stay
  // consistent even if profiling is switched on while threads wait.
  internal::BlockedWait blocked(__builtin_frame_address(0));
  ledger_.Enter(0, blocked.start());
  for (;;) {
    uint32_t s = state_.load(std::memory_order_relaxed);
    if ((s & kLocked) == 0) {
      // Ours, kParked kept: other sleepers may remain (Leave decides).
      if (state_.compare_exchange_weak(s, kLocked | kParked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        break;
      }
      continue;
    }
    if ((s & kParked) == 0 &&
        !state_.compare_exchange_weak(s, s | kParked, std::memory_order_relaxed)) {
      continue;
    }
    internal::FutexWait(&state_, kLocked | kParked);
  }
  // If nobody else sleeps, clear kParked so that our unlock takes the fast
  // path instead of a futex wake for nobody.
  ledger_.Leave(0, blocked.start(),
                [this] { state_.fetch_and(~kParked, std::memory_order_relaxed); });
  blocked.RecordAtRelease(agent::EventTags{name_}, this,
                          [this] { return internal::MarkSlowUnlock(&hold_start_); });
}

// The release is the last access to *this: a thread that takes the lock
// right after it may destroy the Mutex. What is recorded afterwards was
// copied out before, and the wake-up reads no memory (internal/futex.h).
ABSL_ATTRIBUTE_NOINLINE void Mutex::UnlockSlow() {
  int64_t now = 0;
  const int64_t hold_ns = internal::EndHoldSample(&hold_start_, &now);
  const agent::EventTags tags{name_};
  uint32_t s = state_.load(std::memory_order_relaxed);
  if ((s & kLocked) == 0) internal::Fatal("unlock of unlocked Mutex");
  int64_t charged[1] = {0};
  // Only sleepers set kParked (while we hold the lock), so the release
  // fails at most once more: when one sets it after we looked; its waiting
  // during our section is then settled too.
  for (;;) {
    if (s & kParked) {
      if (now == 0) now = agent::MonotonicNanos();
      ledger_.Settle(now, charged,
                     [this] { state_.fetch_and(~kParked, std::memory_order_relaxed); });
      now = 0;
      s = state_.load(std::memory_order_relaxed);
    }
    if (state_.compare_exchange_weak(s, s & ~kLocked, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      break;
    }
  }
  if (s & kParked) internal::FutexWake(&state_, 1);
  // Released: from here on nothing we do lengthens the critical section,
  // and nothing touches *this (`this` is only a key for parked events).
  const void* frame = __builtin_frame_address(0);
  if (charged[0] > 0) agent::RecordContention(charged[0], tags, frame);
  if (hold_ns >= 0) agent::RecordHold(hold_ns, tags, frame);
  internal::RecordDeferredBlocks(this);
}

void Mutex::StartHoldSample() { internal::StartHoldSample(&hold_start_); }

void Mutex::AssertHeld() const {
  if ((state_.load(std::memory_order_relaxed) & kLocked) == 0) {
    internal::Fatal("Mutex::AssertHeld: mutex is not locked");
  }
}

}  // namespace lockprof
