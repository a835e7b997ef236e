// Stacks of code built without frame pointers: a CFI (.eh_frame) unwinder.
//
// CaptureStack (stack_trace.h) walks frame pointers: a few nanoseconds a
// frame, but programs and Debian's libraries built without them (the
// default at -O2) break the chain after the first frame. Where such code is
// expected - the pthread interposer, which profiles unmodified programs,
// turns it on - CaptureStack falls back to this unwinder when its walk did
// not end cleanly at the root (a zero frame pointer): libgcc's
// _Unwind_Backtrace, which reads the call-frame information every object
// carries for exceptions.
//
// Why libgcc's and not libunwind: it is already loaded into every C++
// process (no new dependency), and with glibc >= 2.35 it finds a pc's unwind
// table through _dl_find_object, without a lock; it is at least as fast per
// frame as libunwind's unw_backtrace on this glibc (BENCHMARKS.md has the
// per-event cost). It reads the caller's stack only, never allocates once
// warm, but it is not async-signal-safe: never call it from a signal
// handler.
//
// Cost: about a microsecond or more per event, against tens of nanoseconds
// for the frame-pointer walk, so it runs only where CaptureStack runs: on
// recorded events (sampled contention, sampled holds, waits about to sleep),
// never on a fast path.
#ifndef LOCKPROF_AGENT_RECORD_CFI_UNWIND_H_
#define LOCKPROF_AGENT_RECORD_CFI_UNWIND_H_

#include <atomic>

#include "lockprof/agent/record/stack_trace.h"

namespace lockprof::agent {

// How CaptureStack unwinds.
enum class UnwindMode : int {
  kFramePointers = 0,  // The default: frame pointers only.
  kFallback = 1,       // Frame pointers; CFI when that walk breaks.
  kCfi = 2,            // CFI always.
};

// Sets the mode for the whole process (the interposer sets kFallback, or
// what LOCKPROF_UNWIND=fp|fallback|cfi says).
void SetUnwindMode(UnwindMode mode);

extern std::atomic<int> g_unwind_mode;
inline UnwindMode CurrentUnwindMode() {
  return UnwindMode(g_unwind_mode.load(std::memory_order_relaxed));
}

// Replaces `out` with the CFI unwind of the stack of the caller of the
// function whose frame (its __builtin_frame_address(0), a frame-pointer
// frame) is `entry_frame`, as CaptureStack defines it. Leaves `out`
// unchanged if the unwinder finds no frame above `entry_frame`.
void CaptureStackCfi(const void* entry_frame, StackTrace* out);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_CFI_UNWIND_H_
