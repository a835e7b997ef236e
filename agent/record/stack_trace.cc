#include "lockprof/agent/record/stack_trace.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "lockprof/agent/base/quiet_calls.h"

#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof::agent {

namespace {

// Whether the maps line `line` ("start-end perms ...", hexadecimal, NUL
// terminated) covers `address`; if so, its bounds. Parsed as
// agent/symbolize/mappings.cc parses the file (sscanf allocates nothing).
bool LineCovers(const char* line, uintptr_t address, uintptr_t* lo, uintptr_t* hi) {
  uintptr_t start = 0, end = 0;
  if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &start, &end) != 2) return false;
  if (start > address || address >= end) return false;
  *lo = start;
  *hi = end;
  return true;
}

// The mapping of /proc/self/maps that contains `address`, read with a
// buffer on the stack: no allocation, as the first stack capture of a
// thread may run inside the application's own malloc (an allocator whose
// pthread mutexes the interposer records), where pthread_getattr_np's
// allocations (and, for the main thread, its fopen of this file) would wait
// for the mutex this thread holds. False if it is not found.
bool MappingOf(uintptr_t address, uintptr_t* lo, uintptr_t* hi) {
  NoCancelNoErrno quiet;
  const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  size_t have = 0;        // Bytes of buf holding the unfinished line.
  bool skipping = false;  // Inside a line longer than buf: up to its end.
  bool found = false;
  ssize_t n;
  while (!found && (n = read(fd, buf + have, sizeof buf - have)) > 0) {
    const size_t end = have + size_t(n);
    size_t line = 0;  // Where the current line starts.
    for (size_t i = 0; i < end && !found; ++i) {
      if (buf[i] != '\n') continue;
      buf[i] = '\0';
      if (!skipping) found = LineCovers(buf + line, address, lo, hi);
      skipping = false;
      line = i + 1;
    }
    have = end - line;
    if (have == sizeof buf) {  // One line fills buf: skip the rest of it.
      skipping = true;
      have = 0;
    } else if (have != 0 && line != 0) {
      std::memmove(buf, buf + line, have);
    }
  }
  close(fd);
  return found;
}

// Reads and caches this thread's stack bounds: the mapping its stack is in
// (for the main thread, [stack], which may grow down later: the frames
// walked lie above the current one). Once per thread.
//
// The mapping may be wider than the stack: the kernel merges adjacent
// anonymous mappings (thread stacks created without a guard page, as the
// JVM creates them, or stacks a program maps itself), and a stack may be
// memory from the heap. Parts of that range may be unmapped later, and in
// code built without frame pointers a frame pointer is any value: a walk
// that trusted the whole range read an unmapped page and crashed the
// program. glibc keeps a thread's descriptor (pthread_self()) at the top of
// its stack, whether glibc or the program allocated it, above every frame:
// the bound ends there. (The main thread's lies elsewhere, and [stack] is
// its own mapping.)
void LoadStackBounds() {
  const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  uintptr_t lo = 0, hi = 0;
  if (!MappingOf(here, &lo, &hi)) {
    // Unknown bounds: allow a window above the current frame only.
    lo = here;
    hi = lo + (1 << 20);
  }
  const auto self = static_cast<uintptr_t>(pthread_self());
  if (self > here && self < hi) hi = self;
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
