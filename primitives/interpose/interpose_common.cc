#include "lockprof/primitives/interpose/interpose_common.h"

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/primitives/internal/deferred_block.h"

namespace lockprof::interpose {

thread_local HeldLocks t_held __attribute__((tls_model("initial-exec")));

void SampleHold(const void* lock, agent::LockMode mode, const void* caller) {
  if (agent::InRecorder() || IsOwnCode(caller)) return;
  // Holder tracking keeps every countdown expired (lock_tracking.h); it
  // covers lockprof's own primitives, so here the sampler draws as usual.
  if (agent::LockTrackingOn() && !agent::TrackedHoldSampleDue()) return;
  StartHold(lock, mode);
}

void BeforeRelease(const void* lock, bool maybe_waiters, ReleaseCharge* charge) {
  if (t_held.count > 0) TakeHeld(lock, &charge->hold_ns, &charge->held_mode);
  if (maybe_waiters) internal::Waiters().Settle(lock, charge->charged);
}

void AfterRelease(const void* lock, const ReleaseCharge& charge,
                  const agent::LockMode class_modes[internal::WaiterTable::kClasses],
                  const void* frame, const void* caller) {
  // Parked block events are this thread's own waits: recorded whoever's code
  // released the lock (none are parked for lockprof's own locks).
  internal::RecordDeferredBlocks(lock);
  if (agent::InRecorder() || IsOwnCode(caller)) return;
  bool any = charge.hold_ns >= 0;
  for (int64_t c : charge.charged) any |= c > 0;
  if (!any) return;
  const char* name;
  {
    agent::RecorderScope scope;
    name = LockName(lock);
  }
  for (int c = 0; c < internal::WaiterTable::kClasses; ++c) {
    if (charge.charged[c] > 0) {
      agent::RecordContention(charge.charged[c], agent::EventTags{name, class_modes[c]}, frame);
    }
  }
  if (charge.hold_ns >= 0) {
    agent::RecordHold(charge.hold_ns, agent::EventTags{name, charge.held_mode}, frame);
  }
}

}  // namespace lockprof::interpose
