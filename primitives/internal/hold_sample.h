// The start and end of sampled holds.
//
// Exclusive holds (Mutex, SharedMutex's writers): the lock keeps the start
// time in a plain int64_t (0: this hold is not sampled) that only its holder
// reads and writes.
//
// Shared holds (SharedMutex's readers): many threads hold a read lock at
// once, so each thread keeps the start times of its own sampled read holds
// (up to agent::kMaxSharedHoldSamples at once; more are not sampled) in its
// ThreadState. unlock_shared's fast path tests only their count.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_HOLD_SAMPLE_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_HOLD_SAMPLE_H_

#include <cstdint>

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof::internal {

// The hold_start of an exclusive hold that is not sampled but whose unlock
// must take the slow path all the same (a parked block event waits there:
// deferred_block.h). Also the start of a read hold entry that only marks
// this thread's unlock_shared of that lock slow.
inline constexpr int64_t kSlowUnlockOnly = -1;

// The hold_start of an exclusive hold that is not sampled and has nothing
// parked, whose unlock takes the slow path only to tell lock tracking that
// the lock is no longer held (acquire_hook.h): that unlock can release with
// the fast path's compare-and-swap once it has done so.
//
// While tracking is on it stays in place from one hold to the next (see
// IdleHoldStart), so that a tracked section writes nothing to the lock's
// cache line but its lock word: a waiter spinning on the lock reads that
// line, and a write to it in every section (setting the mark, then
// clearing it) moved the line between the cores twice more per hand-off
// and cost the contended cache workload a fifth of its throughput. An
// untracked hold that finds it (a thread whose countdown has not expired
// since tracking began) only takes the slow unlock, which finds nothing to
// forget.
inline constexpr int64_t kTrackedUnlockOnly = -2;

// The hold_start a hold leaves for the next one when it was not sampled.
inline int64_t IdleHoldStart() { return agent::LockTrackingOn() ? kTrackedUnlockOnly : 0; }

// Makes the unlock of an exclusive hold that is not sampled take the slow
// path (sampled ones take it anyway). Returns true: it always can.
inline bool MarkSlowUnlock(int64_t* hold_start) {
  *hold_start = kSlowUnlockOnly;
  return true;
}

// Called when the hold sampler picked this acquisition.
inline void StartHoldSample(int64_t* hold_start) {
  if (!agent::InRecorder()) *hold_start = agent::MonotonicNanos();
}

// At release: the hold's length if it was sampled, else -1; *hold_start
// goes back to IdleHoldStart().
inline int64_t EndHoldSample(int64_t* hold_start) {
  if (*hold_start <= 0) {
    *hold_start = IdleHoldStart();
    return -1;
  }
  const int64_t hold_ns = agent::MonotonicNanos() - *hold_start;
  *hold_start = IdleHoldStart();
  return hold_ns;
}

// A sampled read hold of `lock` by this thread starts. The read lock may
// have just marked its unlock slow (MarkSharedSlowUnlock): one entry serves both.
inline void StartSharedHoldSample(const void* lock) {
  agent::ThreadState& ts = agent::tls_state;
  if (agent::InRecorder()) return;
  const int n = ts.shared_hold_samples;
  if (n > 0 && ts.shared_holds[n - 1].lock == lock &&
      ts.shared_holds[n - 1].start == kSlowUnlockOnly) {
    ts.shared_holds[n - 1].start = agent::MonotonicNanos();
  } else if (n < agent::kMaxSharedHoldSamples) {
    ts.shared_holds[ts.shared_hold_samples++] = {lock, agent::MonotonicNanos(), false};
  }
}

// Makes this thread's next unlock_shared of `lock` take the slow path
// without sampling the hold; false if this thread has no room left.
inline bool MarkSharedSlowUnlock(const void* lock) {
  agent::ThreadState& ts = agent::tls_state;
  if (ts.shared_hold_samples >= agent::kMaxSharedHoldSamples) return false;
  ts.shared_holds[ts.shared_hold_samples++] = {lock, kSlowUnlockOnly, false};
  return true;
}

// Makes this thread's next unlock_shared of `lock` slow for a read hold that
// lock tracking records: one entry per recorded hold, so that each of its
// unlocks forgets one. The wait path may just have marked this very
// acquisition (its latest entry, not yet claimed): that entry is claimed
// instead of adding another. False if this thread has no room left.
inline bool ClaimSharedSlowUnlock(const void* lock) {
  agent::ThreadState& ts = agent::tls_state;
  const int n = ts.shared_hold_samples;
  if (!(n > 0 && ts.shared_holds[n - 1].lock == lock &&
        ts.shared_holds[n - 1].start == kSlowUnlockOnly && !ts.shared_holds[n - 1].tracked) &&
      !MarkSharedSlowUnlock(lock)) {
    return false;
  }
  ts.shared_holds[ts.shared_hold_samples - 1].tracked = true;
  return true;
}

// At unlock_shared: the length of this thread's latest sampled read hold of
// `lock`, which ends, or -1 if it has none (or only a slow-unlock mark).
inline int64_t EndSharedHoldSample(const void* lock) {
  agent::ThreadState& ts = agent::tls_state;
  for (int i = ts.shared_hold_samples - 1; i >= 0; --i) {
    if (ts.shared_holds[i].lock == lock) {
      const int64_t start = ts.shared_holds[i].start;
      ts.shared_holds[i] = ts.shared_holds[--ts.shared_hold_samples];
      return start == kSlowUnlockOnly ? -1 : agent::MonotonicNanos() - start;
    }
  }
  return -1;
}

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_HOLD_SAMPLE_H_
