#include "lockprof/primitives/interpose/interpose_common.h"

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/agent/record/sampler.h"
#include "lockprof/primitives/internal/deferred_block.h"
#include "lockprof/primitives/interpose/rwlock_word.h"

namespace lockprof::interpose {

thread_local HeldLocks t_held __attribute__((tls_model("initial-exec")));

namespace {

// Records this acquisition in the thread's lock record, for the held-locks
// page, the stall watchdog's holder and lock-order checking. True if it
// was recorded: its release must forget it.
//
// Only a lock inside a loaded object (a global or static) joins the
// lock-order graph. A heap or stack pthread lock dies without a call the
// interposer sees (std::mutex's destructor makes none), so its memory may
// become another lock's, and an edge recorded for the dead one would report
// an inversion that never was. Such locks are still listed as held.
bool TrackHold(const void* lock, agent::LockMode mode, bool tried, const void* frame) {
  const bool ordered = InLoadedObject(lock);
  const char* name = kUnnamedLock;
  if (ordered) {
    agent::RecorderScope scope;
    name = LockName(lock);
  }
  return agent::TrackAcquired(lock, LockTags(lock, name, mode), tried, frame, ordered);
}

}  // namespace

void ForgetHandedOffMutexesSlow(uint64_t hand_offs) {
  agent::KeepErrno keep_errno;
  HeldLocks& h = t_held;
  h.hand_offs_seen = hand_offs;
  for (int i = h.count - 1; i >= 0; --i) {
    const HeldLocks::Entry& e = h.entries[i];
    if (!e.tracked || e.mode != agent::LockMode::kNone || !HandedOffSince(e.lock, e.hand_offs)) {
      continue;
    }
    const void* lock = e.lock;
    for (int j = i; j + 1 < h.count; ++j) h.entries[j] = h.entries[j + 1];
    --h.count;
    agent::TrackReleased(lock);
  }
}

void NoteMutexHandOff(const pthread_mutex_t* m, const void* caller) {
  if (!OthersMayUnlock(m) || PassesThrough(caller)) return;
  agent::KeepErrno keep_errno;
  PublishHandOff(m);
}

void SampleHold(const void* lock, agent::LockMode mode, const void* frame, const void* caller,
                bool tried) {
  if (PassesThrough(caller)) return;
  agent::KeepErrno keep_errno;  // glibc's lock calls leave it alone (quiet_calls.h).
  const bool tracking = agent::LockTrackingOn();
  // Tracking keeps every countdown expired (lock_tracking.h): the hold
  // sampler draws here instead.
  const bool timed = !tracking || agent::TrackedHoldSampleDue();
  // Read after the acquisition: hand-offs counted in it ended earlier holds.
  const uint64_t hand_offs = tracking ? HandOffCount() : 0;
  if (tracking) {
    ForgetHandedOffMutexes(hand_offs);  // Before any edge from them.
    if (t_held.count == 0) t_held.hand_offs_seen = hand_offs;
  }
  bool added;
  HeldLocks::Entry* e = EntryForAcquisition(lock, mode, &added);
  if (e == nullptr) return;  // No room to remember the release.
  if (tracking) {
    e->tracked = TrackHold(lock, mode, tried, frame);
    e->hand_offs = hand_offs;
  }
  if (timed) {
    e->start = agent::MonotonicNanos();
  } else if (added && !e->tracked) {
    --t_held.count;  // Its release has nothing to do.
  }
}

bool BeforeRelease(const void* lock, bool maybe_waiters, ReleaseCharge* charge) {
  agent::KeepErrno keep_errno;
  bool tracked = false;
  const bool held =
      t_held.count > 0 && TakeHeld(lock, &charge->hold_ns, &charge->held_mode, &tracked);
  if (tracked) agent::TrackReleased(lock);
  if (maybe_waiters) internal::Waiters().Settle(lock, charge->charged);
  return held;
}

namespace {

// AfterRelease without the parked block events: the charge and the sampled hold.
void RecordRelease(const void* lock, const ReleaseCharge& charge,
                   const agent::LockMode class_modes[internal::WaiterTable::kClasses],
                   const void* frame, const void* caller) {
  if (PassesThrough(caller)) return;
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
    agent::RecordHold(charge.hold_ns, agent::HoldSampleWeight(),
                      agent::EventTags{name, charge.held_mode}, frame);
  }
}

constexpr agent::LockMode kMutexModes[internal::WaiterTable::kClasses] = {agent::LockMode::kNone,
                                                                          agent::LockMode::kNone};

}  // namespace

void AfterRelease(const void* lock, const ReleaseCharge& charge,
                  const agent::LockMode class_modes[internal::WaiterTable::kClasses],
                  const void* frame, const void* caller) {
  agent::KeepErrno keep_errno;
  // Parked block events are this thread's own waits: recorded whoever's code
  // released the lock (none are parked for lockprof's own locks).
  internal::RecordDeferredBlocks(lock);
  RecordRelease(lock, charge, class_modes, frame, caller);
}

void ReleaseForConditionWait(pthread_mutex_t* m, const void* frame, const void* caller) {
  if (t_held.count == 0 && !MutexMayHaveWaiters(m)) return;
  agent::KeepErrno keep_errno;
  ReleaseCharge charge;
  BeforeRelease(m, SettlesWaiters(m), &charge);
  RecordRelease(m, charge, kMutexModes, frame, caller);
}

void KeepParkedBlocksForRelease(pthread_mutex_t* m) {
  if (agent::tls_state.deferred_blocks == 0 || !internal::HasParkedBlocks(m)) return;
  // No room to make it slow: recorded now, inside the critical section,
  // without the hook.
  if (!MarkSlowReleaseOnce(m, agent::LockMode::kNone)) internal::RecordParkedBlocks(m, false);
}

}  // namespace lockprof::interpose
