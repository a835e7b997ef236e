// HeldLocks: what the interposer remembers about the locks a thread holds.
//
// A pthread lock has no room for lockprof's per-hold state, so the thread
// keeps it: one entry per lock whose release must take the interposer's
// slow path, because the hold sampler timed its acquisition (`start` is the
// monotonic time it started), or a block event waits to be recorded at its
// release (`start` == internal::kSlowUnlockOnly; see
// internal/deferred_block.h), or holder tracking recorded it in the
// thread's lock record (`tracked`: the release must forget it there; see
// agent/record/lock_tracking.h). Read holds of one rwlock may have several
// entries; the latest one ends first. A tracked mutex's entry also keeps
// the count of hand-offs as this thread took it (`hand_offs`): another
// thread may unlock a normal mutex, and its hand-off, published with a
// later number, tells this thread that the hold ended (hand_offs.h;
// `hand_offs_seen`: the count when this thread last looked).
//
// The unlock fast path tests only `count`: zero for a thread that holds no
// such lock, which is nearly always while holders are not tracked.
//
// At most kMaxHeld entries: a further hold is not sampled nor tracked, and
// a further block event is recorded at once instead of at the release.
//
// Thread-safety: thread-local; only its own thread touches it.
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_HELD_LOCKS_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_HELD_LOCKS_H_

#include <cstdint>

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/event_tags.h"
#include "lockprof/primitives/internal/hold_sample.h"

namespace lockprof::interpose {

// As many as lock tracking records per thread (agent::kMaxHeldLocks).
inline constexpr int kMaxHeld = 16;

struct HeldLocks {
  int32_t count;
  struct Entry {
    const void* lock;
    int64_t start;
    agent::LockMode mode;
    bool tracked;
    uint64_t hand_offs;  // HandOffCount() just after it was taken: a tracked mutex's only.
  } entries[kMaxHeld];
  uint64_t hand_offs_seen;
};

// Initial-exec: the unlock fast path reads `count` with one %fs-relative load.
extern thread_local HeldLocks t_held __attribute__((tls_model("initial-exec")));

// Marks this thread's release of `lock` slow (a parked block event). False
// if there is no room.
inline bool MarkSlowRelease(const void* lock, agent::LockMode mode) {
  HeldLocks& h = t_held;
  if (h.count == kMaxHeld) return false;
  h.entries[h.count++] = {lock, internal::kSlowUnlockOnly, mode, false, 0};
  return true;
}

// Marks this thread's release of `lock` slow, unless an entry for it does
// already (a recursive mutex held through a condition wait, or a hold whose
// mark a condition wait kept): a second entry would end the hold's release
// and be left behind for a later one. False if there is no room.
inline bool MarkSlowReleaseOnce(const void* lock, agent::LockMode mode) {
  const HeldLocks& h = t_held;
  for (int i = 0; i < h.count; ++i) {
    if (h.entries[i].lock == lock) return true;
  }
  return MarkSlowRelease(lock, mode);
}

// The entry for this acquisition of `lock`, for the hold sampler's clock
// and holder tracking's mark: the mark a block event of it just left, or a
// new one (nullptr if there is no room). `*added`: new.
inline HeldLocks::Entry* EntryForAcquisition(const void* lock, agent::LockMode mode, bool* added) {
  HeldLocks& h = t_held;
  const int n = h.count;
  *added = false;
  if (n > 0 && h.entries[n - 1].lock == lock &&
      h.entries[n - 1].start == internal::kSlowUnlockOnly && !h.entries[n - 1].tracked) {
    return &h.entries[n - 1];
  }
  if (n == kMaxHeld) return nullptr;
  *added = true;
  h.entries[h.count++] = {lock, internal::kSlowUnlockOnly, mode, false, 0};
  return &h.entries[n];
}

// At a release of `lock`: removes this thread's latest entry for it. Returns
// false if there is none; else sets *hold_ns to the hold's length (-1 if it
// was not sampled), *mode to the mode it was taken in, and *tracked.
inline bool TakeHeld(const void* lock, int64_t* hold_ns, agent::LockMode* mode, bool* tracked) {
  HeldLocks& h = t_held;
  for (int i = h.count - 1; i >= 0; --i) {
    if (h.entries[i].lock != lock) continue;
    const int64_t start = h.entries[i].start;
    *mode = h.entries[i].mode;
    *tracked = h.entries[i].tracked;
    for (int j = i; j + 1 < h.count; ++j) h.entries[j] = h.entries[j + 1];
    --h.count;
    *hold_ns = start == internal::kSlowUnlockOnly ? -1 : agent::MonotonicNanos() - start;
    return true;
  }
  return false;
}

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_HELD_LOCKS_H_
