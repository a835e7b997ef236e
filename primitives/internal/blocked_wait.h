// BlockedWait: the block-profile side of one wait that is about to sleep.
//
// Construct it in the lockprof function that sleeps (a noinline slow path),
// passing that function's __builtin_frame_address(0): it reads the clock and,
// when the block profile is on, captures the waiter's stack — before the
// sleep, so that nothing is captured inside the critical section the waiter
// then enters. Record() charges the wait, from construction to now, at that
// stack; RecordAtRelease() does so once the lock the wait ended with is
// released (deferred_block.h).
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_BLOCKED_WAIT_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_BLOCKED_WAIT_H_

#include <cstdint>

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/stack_trace.h"
#include "lockprof/agent/record/thread_state.h"
#include "lockprof/primitives/internal/deferred_block.h"

namespace lockprof::internal {

class BlockedWait {
 public:
  explicit BlockedWait(const void* entry_frame)
      : start_(agent::MonotonicNanos()),
        want_stack_(agent::BlockProfilingEnabled() && !agent::InRecorder()) {
    if (want_stack_) agent::CaptureStack(entry_frame, &stack_);
  }
  BlockedWait(const BlockedWait&) = delete;
  BlockedWait& operator=(const BlockedWait&) = delete;

  // When the wait started (monotonic nanoseconds), for a WaitLedger.
  int64_t start() const { return start_; }

  // Records the wait, which ends now, in the block profile. For a wait that
  // did not end holding a lock (a condition wait, before it re-locks).
  void Record(const agent::EventTags& tags) {
    const int64_t wait_ns = Count(tags);
    if (want_stack_) agent::RecordBlock(wait_ns, tags, stack_);
  }

  // The wait ends now with this thread holding `lock`: its event is parked
  // until the release, outside the critical section just entered.
  // `slow_unlock()` makes this thread's unlock of `lock` take the slow path,
  // which calls RecordDeferredBlocks; if it returns false (no room) the
  // event is recorded now.
  template <typename SlowUnlock>
  void RecordAtRelease(const agent::EventTags& tags, const void* lock, SlowUnlock slow_unlock) {
    const int64_t wait_ns = Count(tags);
    if (!want_stack_) return;
    if (slow_unlock()) {
      DeferBlock(lock, wait_ns, tags, stack_);
    } else {
      agent::RecordBlock(wait_ns, tags, stack_);
    }
  }

 private:
  // The wait's length, added to the thread's totals (thread_lock_wait.h)
  // whatever the profiling rates: every wait that slept passes here.
  int64_t Count(const agent::EventTags& tags) const {
    const int64_t wait_ns = agent::MonotonicNanos() - start_;
    agent::CountThreadWait(wait_ns, tags.wait == agent::WaitKind::kCondition);
    return wait_ns;
  }

  int64_t start_;
  bool want_stack_;
  agent::StackTrace stack_;
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_BLOCKED_WAIT_H_
