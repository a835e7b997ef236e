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

#include "lockprof/agent/clock.h"
#include "lockprof/agent/record.h"
#include "lockprof/agent/thread_state.h"

namespace lockprof::internal {

// Called when the hold sampler picked this acquisition.
inline void StartHoldSample(int64_t* hold_start) {
  if (!agent::InRecorder()) *hold_start = agent::MonotonicNanos();
}

// At release: the hold's length if it was sampled (setting *now to the
// time read, and *hold_start back to 0), else -1.
inline int64_t EndHoldSample(int64_t* hold_start, int64_t* now) {
  if (*hold_start == 0) return -1;
  *now = agent::MonotonicNanos();
  const int64_t hold_ns = *now - *hold_start;
  *hold_start = 0;
  return hold_ns;
}

// A sampled read hold of `lock` by this thread starts.
inline void StartSharedHoldSample(const void* lock) {
  agent::ThreadState& ts = agent::tls_state;
  if (agent::InRecorder() || ts.shared_hold_samples >= agent::kMaxSharedHoldSamples) return;
  ts.shared_holds[ts.shared_hold_samples++] = {lock, agent::MonotonicNanos()};
}

// At unlock_shared: the length of this thread's latest sampled read hold of
// `lock`, which ends, or -1 if it has none.
inline int64_t EndSharedHoldSample(const void* lock) {
  agent::ThreadState& ts = agent::tls_state;
  for (int i = ts.shared_hold_samples - 1; i >= 0; --i) {
    if (ts.shared_holds[i].lock == lock) {
      const int64_t hold_ns = agent::MonotonicNanos() - ts.shared_holds[i].start;
      ts.shared_holds[i] = ts.shared_holds[--ts.shared_hold_samples];
      return hold_ns;
    }
  }
  return -1;
}

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_HOLD_SAMPLE_H_
