// Which locks each thread holds and waits for: the recording half of
// lock-order checking, the held-locks page and the stall watchdog
// (agent/lock_order.h is the public half).
//
// Each thread that waits for a lockprof lock, or acquires one while
// tracking is on, gets a ThreadLocks record, allocated once and linked into
// a process-wide list that is never shrunk (a record freed by an exiting
// thread is reused by a new one). The owning thread writes its record under
// a sequence counter; a reader (the /debug/lockprof/held handler, the stall
// watchdog) copies it and retries if the counter moved, so reading takes no
// lock that an application thread could hold and never makes one wait.
//
// Tracking is off by default, and then the primitives' fast paths do not
// reach here at all: while it is on, the hold sampler's countdown is kept
// expired, so that every acquisition takes the primitive's hook, which
// calls TrackAcquired and marks its unlock slow, which calls TrackReleased
// just before the release. Their common cases are inline pushes and pops
// (thread_locks.h). Waits are published whatever the setting: a thread
// about to sleep is on a slow path already.
#ifndef LOCKPROF_AGENT_RECORD_LOCK_TRACKING_H_
#define LOCKPROF_AGENT_RECORD_LOCK_TRACKING_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "lockprof/agent/base/export.h"
#include "lockprof/agent/deadlock/events.h"
#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/sampler.h"
#include "lockprof/agent/record/stack_trace.h"
#include "lockprof/agent/record/thread_locks.h"

namespace lockprof::agent {

// True while holders are tracked (lock-order checking, the stall watchdog,
// or SetHeldLockTracking).
LOCKPROF_EXPORT extern std::atomic<bool> g_track_locks;
inline bool LockTrackingOn() { return g_track_locks.load(std::memory_order_relaxed); }

// True while holders are recorded with since when and where they took
// their locks (SetHeldLockTracking, the stall watchdog); lock-order
// checking alone records only which locks each thread holds.
extern std::atomic<bool> g_held_details;
inline bool HeldDetailsOn() { return g_held_details.load(std::memory_order_relaxed); }

// Recomputes g_track_locks and g_held_details from the three settings
// (lock_order.cc).
void UpdateLockTracking();

// This thread has just acquired `lock` (`tried`: by a try_lock). Records it
// as held and, while lock-order checking is on, adds the edges from the
// locks this thread already holds (none for a try). `ordered`: false keeps
// the lock out of the lock-order graph (no edges into it or from it), for a
// lock whose memory may be reused without lockprof's knowing (an
// interposed pthread lock on the heap). `entry_frame` is the frame of the
// primitive's noinline hook, as for CaptureStack. Returns true if the lock
// was recorded: its unlock must then call NoteReleased.
bool NoteAcquired(const void* lock, const EventTags& tags, bool tried, bool ordered,
                  const void* entry_frame);

// This thread releases `lock`: forgets it if it was recorded. Cheap when
// this thread records nothing.
void NoteReleased(const void* lock);

// What the primitives call: NoteAcquired and NoteReleased, with their
// common cases inline (thread_locks.h).
inline bool TrackAcquired(const void* lock, const EventTags& tags, bool tried,
                          const void* entry_frame, bool ordered = true) {
  if (PushHeldFast(lock, tags, tried, ordered, LockOrderCheckingOn(), HeldDetailsOn())) {
    return true;
  }
  return NoteAcquired(lock, tags, tried, ordered, entry_frame);
}
inline void TrackReleased(const void* lock) {
  if (!PopHeldFast(lock)) NoteReleased(lock);
}

// An acquisition of `lock` that cannot be recorded (a read hold with no room
// left to make its unlock forget it): its edges are checked all the same.
void CheckOrderUnrecorded(const void* lock, const EventTags& tags, bool tried,
                          const void* entry_frame);

// This thread is about to sleep for `lock`: while lock-order checking is
// on, adds the edges from the locks it holds first, so that a deadlock is
// reported before it hangs. `stack`: this wait's, if already captured
// (depth 0 if not). `self_wait_hangs`: the lock is one this thread can
// never get while it holds it (not recursive, not a timed wait), so that
// sleeping for it while this thread's record holds it is a certain
// deadlock, reported as a cycle of one lock.
void CheckOrderBeforeWait(const void* lock, const EventTags& tags, const void* entry_frame,
                          const StackTrace* stack, bool self_wait_hangs);

// This thread is about to sleep for `lock` (described by `tags`), which it
// holds and whose kind never lets its holder in again, as the lock itself
// says (an interposed normal mutex whose glibc owner is this thread): while
// lock-order checking is on, reports that self-deadlock as a cycle of one
// lock, whatever this thread's record lists. `stack`: the wait's, if
// already captured (depth 0 if not).
void ReportWaitForOwnLock(const void* lock, const EventTags& tags, const void* entry_frame,
                          const StackTrace* stack);

// This thread sleeps for `lock` from `start` (MonotonicNanos), with `stack`
// (depth 0 if not captured). Returns whether it published the wait (not
// inside the recorder: a hook's own wait, nested in a wait being reported);
// only then NoteWaitEnd when it stops waiting.
bool NoteWaitBegin(const void* lock, const EventTags& tags, int64_t start, const StackTrace& stack);
void NoteWaitEnd();

// The stall watchdog's threshold in nanoseconds; 0 while it is off.
LOCKPROF_EXPORT extern std::atomic<int64_t> g_stall_threshold_ns;
inline int64_t StallThresholdNanos() {
  return g_stall_threshold_ns.load(std::memory_order_relaxed);
}

// This thread has waited for `lock` since `start`, longer than the
// threshold: reports it (stderr, hook, counter) with its holder.
void ReportStall(const void* lock, const EventTags& tags, int64_t start);

// A copy of one thread's record, for the readers.
struct LockView {
  const void* lock = nullptr;
  // The lock's name as it read when the record was copied (what the tables
  // keep: kMaxLockName - 1 bytes at most), not a pointer to it: the name may
  // die with the lock (lock_name.h) or with the plugin that named it, while
  // a reader still formats the copy. Empty for an unnamed lock, or one whose
  // name could no longer be read.
  char name[kMaxLockName] = {};
  LockMode mode = LockMode::kNone;
  bool tried = false;
  // MonotonicNanos when acquired (0: not recorded, see HeldDetailsOn), or
  // when the wait began.
  int64_t since = 0;
  int depth = 0;
  uintptr_t pcs[kHeldStackDepth] = {};
  // A hold of a thread that has exited holding the lock (exited_holds.h),
  // and that thread's name then.
  bool exited = false;
  char exited_name[16] = {};
};

struct ThreadLocksView {
  int64_t tid = 0;
  std::vector<LockView> held;  // Oldest first.
  bool waiting = false;
  LockView wait;
};

// Every live thread's record that holds or waits for something, then the
// holds of threads that exited holding locks no live thread holds
// (exited_holds.h).
std::vector<ThreadLocksView> SnapshotThreadLocks();

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_LOCK_TRACKING_H_
