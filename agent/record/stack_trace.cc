#include "lockprof/agent/record/stack_trace.h"

#include <pthread.h>

#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof::agent {

namespace {

// Reads and caches this thread's stack bounds. pthread_getattr_np parses
// /proc/self/maps for the main thread; it runs once per thread.
void LoadStackBounds() {
  pthread_attr_t attr;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
  }
  uintptr_t lo = reinterpret_cast<uintptr_t>(addr);
  uintptr_t hi = lo + size;
  if (size == 0) {
    // Unknown bounds: allow a window above the current frame only.
    lo = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    hi = lo + (1 << 20);
  }
  tls_state.stack_lo = lo;
  tls_state.stack_hi = hi;
}

// The frame-pointer walk. Returns true if it ended at the root (a zero
// frame pointer or return address), false if the chain broke or the depth
// ran out.
bool WalkFramePointers(const void* entry_frame, StackTrace* out) {
  if (tls_state.stack_hi == 0) LoadStackBounds();
  const uintptr_t lo = tls_state.stack_lo;
  const uintptr_t hi = tls_state.stack_hi;
  // A frame record is {saved frame pointer, return address}.
  auto fp = reinterpret_cast<uintptr_t>(entry_frame);
  int depth = 0;
  bool at_root = false;  // The walk ended at a zero frame pointer or return address.
  while (depth < kMaxStackDepth) {
    if (fp < lo || fp + 2 * sizeof(uintptr_t) > hi || fp % sizeof(uintptr_t) != 0) break;
    const uintptr_t* frame = reinterpret_cast<const uintptr_t*>(fp);
    uintptr_t ret = frame[1];
    if (ret == 0) {
      at_root = true;
      break;
    }
    out->pcs[depth++] = ret;
    uintptr_t next = frame[0];
    if (next == 0) {
      at_root = true;
      break;
    }
    // Frames grow towards higher addresses as we walk to the root; anything
    // else is a broken chain.
    if (next <= fp) break;
    fp = next;
  }
  out->depth = depth;
  return at_root;
}

}  // namespace

void CaptureStack(const void* entry_frame, StackTrace* out) {
  const bool at_root = WalkFramePointers(entry_frame, out);
  // Code without frame pointers breaks the chain: cfi_unwind.h.
  const UnwindMode mode = CurrentUnwindMode();
  if (__builtin_expect(mode != UnwindMode::kFramePointers, 0) &&
      (mode == UnwindMode::kCfi || (!at_root && out->depth < kMaxStackDepth))) {
    CaptureStackCfi(entry_frame, out);
  }
}

void CaptureStackWithoutFallback(const void* entry_frame, StackTrace* out) {
  WalkFramePointers(entry_frame, out);
  if (__builtin_expect(CurrentUnwindMode() == UnwindMode::kCfi, 0)) {
    CaptureStackCfi(entry_frame, out);
  }
}

}  // namespace lockprof::agent
