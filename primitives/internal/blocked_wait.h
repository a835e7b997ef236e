// BlockedWait: the block-profile side of one wait that is about to sleep.
//
// Construct it in the lockprof function that sleeps (a noinline slow path),
// passing that function's __builtin_frame_address(0): it reads the clock and,
// when the block profile is on, captures the waiter's stack — before the
// sleep, so that nothing is captured inside the critical section the waiter
// then enters. Record() charges the wait, from construction to now, at that
// stack: one table update.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_BLOCKED_WAIT_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_BLOCKED_WAIT_H_

#include <cstdint>

#include "lockprof/agent/clock.h"
#include "lockprof/agent/event_tags.h"
#include "lockprof/agent/record.h"
#include "lockprof/agent/stack_trace.h"

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

  // Records the wait, which ends now, in the block profile.
  void Record(const agent::EventTags& tags) {
    if (want_stack_) agent::RecordBlock(agent::MonotonicNanos() - start_, tags, stack_);
  }

 private:
  int64_t start_;
  bool want_stack_;
  agent::StackTrace stack_;
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_BLOCKED_WAIT_H_
