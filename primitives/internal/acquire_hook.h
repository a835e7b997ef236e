// The hook a lockprof lock runs after acquiring when its hold-sampling
// countdown has expired: either the hold sampler picked this acquisition,
// or holders are tracked (agent/record/lock_tracking.h), which keeps every
// thread's countdown expired so that every acquisition gets here.
//
// While tracking, the hold sampler's draw is made here instead (with the
// same probability, 1 / the hold rate), the lock is recorded as held by
// this thread (and its lock-order edges added), and the unlock is marked
// slow so that it forgets the lock again.
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
    StartHoldSample(hold_start);
    return;
  }
  const bool sample = agent::TrackedHoldSampleDue();
  if (agent::NoteAcquired(lock, tags, tried, frame) && *hold_start == 0) {
    MarkSlowUnlock(hold_start);
  }
  if (sample) StartHoldSample(hold_start);
}

// A shared acquisition: this thread's unlock_shared of `lock` is made slow
// through its ThreadState (one entry, shared with a sampled hold's).
inline void AfterSharedAcquire(const void* lock, const agent::EventTags& tags, bool tried,
                               const void* frame) {
  if (!agent::LockTrackingOn()) {
    StartSharedHoldSample(lock);
    return;
  }
  const bool sample = agent::TrackedHoldSampleDue();
  // Not recorded if this thread has no room left to make the unlock slow:
  // then nothing would forget it.
  if (ClaimSharedSlowUnlock(lock)) agent::NoteAcquired(lock, tags, tried, frame);
  if (sample) StartSharedHoldSample(lock);
}

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_ACQUIRE_HOOK_H_
