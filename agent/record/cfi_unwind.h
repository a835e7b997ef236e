// Stacks of code built without frame pointers: a CFI (.eh_frame) unwinder.
//
// CaptureStack (stack_trace.h) walks frame pointers: a few nanoseconds a
// frame, but programs and Debian's libraries built without them (the
// default at -O2) break the chain after the first frame. Where such code is
// expected - the pthread interposer, which profiles unmodified programs,
// turns it on - CaptureStack falls back to this unwinder when its walk did
// not end cleanly at the root (a zero frame pointer), or when the function
// its first return address is in keeps no frame pointer (the walk then
// skips that function's caller). It reads the call-frame information every
// object carries for exceptions, two ways:
//
// - The cached rules of frame_rules.h: per return address, where the CFA,
//   the return address and rbp are, decoded once from .eh_frame and kept in
//   a table shared by all threads. A warm frame costs a _dl_find_object and
//   two loads (about 10 ns).
// - libgcc's _Unwind_Backtrace, for a stack with a frame those rules cannot
//   describe (a CFA expression, a signal frame): it finds, decodes and runs
//   every frame's programs each time, a microsecond or more per stack, and
//   trusts them as it does when it unwinds an exception.
//
// Every load of the cached walk is inside the thread's stack: a frame whose
// rule leads elsewhere (wrong CFI in hand-written assembly) ends the stack
// there, and a capture on another stack (a coroutine's, whose bounds are
// unknown) has no frames, as in the frame-pointer walk. Neither is handed
// to libgcc, which would load from there and fault in the host's lock.
//
// Why libgcc and not libunwind: it is already loaded into every C++ process
// (no new dependency), and with glibc >= 2.35 it finds a pc's unwind table
// through _dl_find_object, without a lock. Both ways read the caller's
// stack only and never allocate, but neither is async-signal-safe: never
// call them from a signal handler.
//
// Even cached, it costs more than the frame-pointer walk, so it runs only
// where CaptureStack runs: on recorded events (sampled contention, sampled
// holds, waits about to sleep), never on a fast path.
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
// First with the cached rules of frame_rules.h (tens of nanoseconds a frame
// once warm); where a frame has none, with libgcc's _Unwind_Backtrace.
void CaptureStackCfi(const void* entry_frame, StackTrace* out);

// The two ways apart, for tests and benchmarks. CaptureStackCfiCached
// returns false, leaving `out` alone, where a frame needs libgcc; it reads
// this thread's stack bounds, which CaptureStack loads.
bool CaptureStackCfiCached(const void* entry_frame, StackTrace* out);
void CaptureStackLibgcc(const void* entry_frame, StackTrace* out);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_CFI_UNWIND_H_
