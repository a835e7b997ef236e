// The hook a lockprof lock runs after acquiring when its hold-sampling
// countdown has expired (agent::HoldCountdownExpired): either the hold
// sampler's stride ran out, or holders are tracked
// (agent/record/lock_tracking.h), which keeps every thread's countdown
// expired so that every acquisition gets here.
//
// While tracking, the lock is recorded as held by this thread (and its
// lock-order edges added), the unlock is marked slow so that it forgets the
// lock again, and the hold sampler draws from a countdown of its own
// (agent::TrackedHoldSampleDue: the same probability, 1 / the hold rate).
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_ACQUIRE_HOOK_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_ACQUIRE_HOOK_H_

#include <cstdint>

#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/primitives/internal/hold_sample.h"

namespace lockprof::internal {

// An exclusive acquisition (by try_lock if `tried`), whose hold start lives
// in *hold_start. `frame`: the calling hook's own frame.
inline void AfterExclusiveAcquire(const void* lock, const agent::EventTags& tags, bool tried,
                                  int64_t* hold_start, const void* frame) {
  if (!agent::LockTrackingOn()) {
    if (agent::HoldSampleDue()) StartHoldSample(hold_start);
    return;
  }
  if (agent::TrackAcquired(lock, tags, tried, frame) && *hold_start == 0) {
    // Not kSlowUnlockOnly: nothing is parked for this hold. Usually the
    // mark is there already, left by the previous hold (hold_sample.h).
    *hold_start = kTrackedUnlockOnly;
  }
  if (agent::TrackedHoldSampleDue()) StartHoldSample(hold_start);
}

// A shared acquisition: this thread's unlock_shared of `lock` is made slow
// through its ThreadState (one entry, shared with a sampled hold's).
inline void AfterSharedAcquire(const void* lock, const agent::EventTags& tags, bool tried,
                               const void* frame) {
  if (!agent::LockTrackingOn()) {
    if (agent::HoldSampleDue()) StartSharedHoldSample(lock);
    return;
  }
  // Not recorded if this thread has no room left to make the unlock slow:
  // then nothing would forget it; its edges are checked all the same.
  if (ClaimSharedSlowUnlock(lock)) {
    agent::TrackAcquired(lock, tags, tried, frame);
  } else {
    agent::CheckOrderUnrecorded(lock, tags, tried, frame);
  }
  if (agent::TrackedHoldSampleDue()) StartSharedHoldSample(lock);
}

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_ACQUIRE_HOOK_H_
