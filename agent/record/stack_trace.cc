#include "lockprof/agent/record/stack_trace.h"

#include <dlfcn.h>  // _dl_find_object (glibc 2.35)
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "lockprof/agent/base/quiet_calls.h"

#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/agent/record/frame_rules.h"
#include "lockprof/agent/record/thread_state.h"

// ld.so's: the stack pointer the program started with, in [stack].
extern "C" void* __libc_stack_end;

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

// The main thread's pthread_self(), recorded by a static initialiser when
// it runs on that thread (0 when it does not: a library dlopen()ed from
// another one). Not getpid() == gettid() alone: in the child of a fork()
// from another thread, the forking thread is the child's main thread, with
// its own stack and descriptor.
uintptr_t g_main_thread_self = 0;
[[maybe_unused]] const bool g_main_thread_self_recorded = [] {
  if (getpid() == pid_t(syscall(SYS_gettid))) {
    g_main_thread_self = static_cast<uintptr_t>(pthread_self());
  }
  return true;
}();

bool OnMainThread(uintptr_t self) {
  return g_main_thread_self != 0 ? self == g_main_thread_self
                                 : getpid() == pid_t(syscall(SYS_gettid));
}

// How far below the top of [stack] the main thread's frames may lie: the
// stack grows down to RLIMIT_STACK, but no further than 128 MiB, the least
// gap the kernel leaves between the stack's top and the first mmap(), so
// that nothing but the main stack lies in that range whatever the limit was
// at exec. 0 with no limit (the legacy layout: then [stack] as it is).
uintptr_t MainStackWindow() {
  rlimit limit;
  if (getrlimit(RLIMIT_STACK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 0;
  return std::min<uintptr_t>(limit.rlim_cur, uintptr_t{128} << 20);
}

// Reads and caches this thread's own stack: [lo, hi) such that, from any
// live frame of this thread inside it, every byte up to hi is mapped for as
// long as that frame lives. False, with nothing cached, if the bounds
// cannot be read (no /proc, or no file descriptor left): the next capture
// tries again.
//
// Not the mapping around the current frame: the capture may run on another
// stack (a coroutine's, from the heap or a mapping of its own; a signal
// stack), whose mapping can later shrink or go while the cached bounds
// stayed. And the mapping may be wider than the stack: the kernel merges
// adjacent anonymous mappings (thread stacks created without a guard page,
// as the JVM creates them, or stacks a program maps itself), and parts of
// it may be unmapped later. So the bounds come from the thread's own
// anchors: glibc keeps a thread's descriptor (pthread_self()) at the top of
// its stack, whether glibc or the program allocated it, above every frame;
// the main thread's stack is [stack], which holds __libc_stack_end (the
// stack pointer at start) and grows down below it.
bool LoadStackBounds() {
  const auto self = static_cast<uintptr_t>(pthread_self());
  const bool main_thread = OnMainThread(self);
  const auto anchor = main_thread ? reinterpret_cast<uintptr_t>(__libc_stack_end) : self;
  uintptr_t lo = 0, hi = 0;
  if (!MappingOf(anchor, &lo, &hi)) return false;
  if (main_thread) {
    const uintptr_t window = MainStackWindow();
    if (window != 0 && hi - window < lo) lo = hi - window;
  } else {
    hi = self;
  }
  tls_state.stack_lo = lo;
  tls_state.stack_hi = hi;
  return true;
}

// The frame-pointer walk. Returns true if it ended at the root (a zero
// frame pointer or return address), false if the chain broke or the depth
// ran out.
bool WalkFramePointers(const void* entry_frame, StackTrace* out) {
  // Only frames above the entry frame, on this thread's own stack: from
  // there up to the stack's end every word is mapped. A capture on another
  // stack walks no frame.
  // (The frame pointer only rises from there: no lower bound to check.)
  const uintptr_t hi = OwnStackEnd(entry_frame);
  // A frame record is {saved frame pointer, return address}.
  auto fp = reinterpret_cast<uintptr_t>(entry_frame);
  int depth = 0;
  bool at_root = false;  // The walk ended at a zero frame pointer or return address.
  while (depth < kMaxStackDepth) {
    // Not fp + 16 > hi: a frame pointer of -8 (code without frame pointers
    // leaves any value) would wrap around to 8 and pass.
    if (hi < 2 * sizeof(uintptr_t) || fp > hi - 2 * sizeof(uintptr_t) ||
        fp % sizeof(uintptr_t) != 0) {
      break;
    }
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

// Whether `pc` is in the C library, whose thread and program start
// (start_thread, __libc_start_call_main) call the outermost frame of every
// stack glibc starts.
bool InLibc(uintptr_t pc) {
  static const dl_find_object libc = [] {
    dl_find_object found{};
    // A function only libc defines: a sanitizer's runtime, or the
    // interposer, defines pthread functions of its own in the program.
    if (_dl_find_object(reinterpret_cast<void*>(&gnu_get_libc_version), &found) != 0) found = {};
    return found;
  }();
  const auto p = reinterpret_cast<void*>(pc - 1);
  return p >= libc.dlfo_map_start && p < libc.dlfo_map_end;
}

// Whether a walk that ended at a zero word reached the root. In code built
// without frame pointers, the frame pointer may point at any object, and
// one whose first or second word is zero (a null pointer, an empty
// string's length) looks like the outermost frame record: the walk stops
// there with a frame or two. The real root is the frame that glibc's
// thread or program start called: its return address is in libc.
bool ReachedRoot(const StackTrace& walked) {
  return walked.depth > 0 && InLibc(walked.pcs[walked.depth - 1]);
}

// Whether the function that `return_address` returns into keeps no frame
// pointer: its CFA is found from rsp. Such a function leaves rbp to its
// caller's frame, so a frame-pointer walk through it goes from its own
// return address straight to its caller's caller, skipping the caller (the
// application's function that called a library built without frame
// pointers, which called the lock), and may still end cleanly at the root.
bool KeepsNoFramePointer(uintptr_t return_address) {
  const FrameRule rule = FindFrameRule(return_address);
  return rule.kind == FrameRule::kUnwind && !rule.cfa_from_rbp;
}

}  // namespace

uintptr_t OwnStackEnd(const void* frame) {
  if (tls_state.stack_hi == 0 && !LoadStackBounds()) return 0;
  const auto f = reinterpret_cast<uintptr_t>(frame);
  return f >= tls_state.stack_lo && f < tls_state.stack_hi ? tls_state.stack_hi : 0;
}

void CaptureStack(const void* entry_frame, StackTrace* out) {
  const bool at_root = WalkFramePointers(entry_frame, out);
  // Code without frame pointers breaks the chain (cfi_unwind.h), or skips
  // a frame where the function that took the lock has none.
  const UnwindMode mode = CurrentUnwindMode();
  if (__builtin_expect(mode != UnwindMode::kFramePointers, 0) &&
      (mode == UnwindMode::kCfi ||
       (out->depth < kMaxStackDepth && !(at_root && ReachedRoot(*out))) ||
       (out->depth > 0 && KeepsNoFramePointer(out->pcs[0])))) {
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
