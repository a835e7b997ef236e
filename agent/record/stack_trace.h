// Capturing call stacks on the recording path.
//
// A frame-pointer walk: lockprof and the code that uses it are built with
// -fno-omit-frame-pointer. It costs a few nanoseconds per frame, takes no
// lock, allocates nothing and is async-signal-safe. Every frame address is
// checked against the current thread's own stack (OwnStackEnd) before it is
// read, so a frame without a frame pointer (glibc's thread start, say) ends
// the walk instead of faulting.
#ifndef LOCKPROF_AGENT_RECORD_STACK_TRACE_H_
#define LOCKPROF_AGENT_RECORD_STACK_TRACE_H_

#include <cstdint>

namespace lockprof::agent {

// Frames kept per sample. Go keeps 32 (128 since 1.23); deeper stacks are
// truncated at the root end.
inline constexpr int kMaxStackDepth = 32;

struct StackTrace {
  uintptr_t pcs[kMaxStackDepth];  // Return addresses, leaf first.
  int depth = 0;
};

// Captures the stack of the caller of the function whose frame is
// `entry_frame` (that function's __builtin_frame_address(0)). Passing the
// frame of lockprof's outermost non-inlined entry point (Mutex::UnlockSlow,
// say) makes the leaf the user's own function, whatever lockprof's internals
// inlined or tail-called below it.
void CaptureStack(const void* entry_frame, StackTrace* out);

// As CaptureStack, but where the frame-pointer walk breaks it stops, unless
// LOCKPROF_UNWIND=cfi asked for CFI everywhere: for stacks taken on every
// acquisition (held-lock tracking), where a CFI unwind's ~10 us each would
// slow the program down by orders of magnitude. In code built without frame
// pointers it may keep only the first frame (the lock's caller).
void CaptureStackWithoutFallback(const void* entry_frame, StackTrace* out);

// The end (exclusive) of this thread's own stack, if `frame` lies on it:
// every word from `frame` up to there is mapped while the frame lives.
// 0 when `frame` is on another stack (a coroutine's, a signal stack), or
// when the bounds could not be read (no /proc, no file descriptor left):
// those captures walk no frame. The bounds are read once per thread
// (/proc/self/maps), then cached.
uintptr_t OwnStackEnd(const void* frame);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_STACK_TRACE_H_
