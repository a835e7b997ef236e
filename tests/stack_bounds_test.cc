// The frame-pointer walk reads memory only inside the calling thread's own
// stack, even where the mapping its stack lies in is wider: thread stacks
// created without a guard page merge into one mapping, and part of it may
// be unmapped later (a thread joined); a capture may run on a coroutine's
// stack, whose mapping goes later; the bounds may be unreadable at the
// first capture. In code built without frame pointers the frame pointer is
// any value, here one that points into memory unmapped since: the walk
// must stop, not fault. And such a value must not pass for the root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/agent/record/stack_trace.h"
#include "lockprof/agent/record/thread_state.h"
#include "unwind/frames.h"

#if defined(__x86_64__)
// garbage_call(rbp, fn): calls fn with rbp set to `rbp`, as code built
// without frame pointers may leave it (a general register there).
extern "C" void garbage_call(uintptr_t rbp, void (*fn)());
asm(R"(
  .text
  .globl garbage_call
  .type garbage_call,@function
garbage_call:
  .cfi_startproc
  push %rbp
  .cfi_def_cfa_offset 16
  .cfi_offset rbp, -16
  mov %rdi, %rbp
  call *%rsi
  pop %rbp
  .cfi_def_cfa_offset 8
  ret
  .cfi_endproc
  .size garbage_call, .-garbage_call
)");

// bad_cfa_call(fn): calls fn; its CFI puts the CFA 1 GiB above rsp, as a
// wrong .cfi_def_cfa_offset in hand-written assembly would (nothing notices
// until something unwinds through it).
extern "C" void bad_cfa_call(void (*fn)());
asm(R"(
  .text
  .globl bad_cfa_call
  .type bad_cfa_call,@function
bad_cfa_call:
  .cfi_startproc
  push %rbx
  .cfi_def_cfa_offset 0x40000000
  call *%rdi
  pop %rbx
  .cfi_def_cfa_offset 8
  ret
  .cfi_endproc
  .size bad_cfa_call, .-bad_cfa_call
)");

namespace {

using lockprof::agent::UnwindMode;

// One unwind mode while it lives, whatever mode the test program runs in
// (sanitizer builds link the interposer, which sets the fallback mode).
class ScopedUnwindMode {
 public:
  explicit ScopedUnwindMode(UnwindMode mode) : was_(lockprof::agent::CurrentUnwindMode()) {
    lockprof::agent::SetUnwindMode(mode);
  }
  ~ScopedUnwindMode() { lockprof::agent::SetUnwindMode(was_); }

 private:
  UnwindMode was_;
};

// The frame-pointer walk alone (the default mode).
class FramePointersOnly : public ScopedUnwindMode {
 public:
  FramePointersOnly() : ScopedUnwindMode(UnwindMode::kFramePointers) {}
};

std::atomic<int> g_step{0};
uintptr_t g_a_frame = 0;
int g_depth = -1;

void WaitFor(int step) {
  while (g_step.load() < step) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

__attribute__((noinline)) void Capture() {
  lockprof::agent::StackTrace st;
  lockprof::agent::CaptureStack(__builtin_frame_address(0), &st);
  g_depth = st.depth;
  asm volatile("");
}

// The mapping of /proc/self/maps that holds `a`: [*lo, *hi).
bool MappingHolding(uintptr_t a, uintptr_t* lo, uintptr_t* hi) {
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) return false;
  char line[512];
  bool found = false;
  while (!found && std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long l = 0, h = 0;
    found = std::sscanf(line, "%lx-%lx", &l, &h) == 2 && l <= a && a < h;
    if (found) *lo = l, *hi = h;
  }
  std::fclose(f);
  return found;
}

void* ThreadA(void*) {
  g_a_frame = (reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) - 4096) & ~uintptr_t{15};
  g_step = 1;
  WaitFor(3);
  return nullptr;
}

bool g_merged = false;
void* ThreadB(void*) {
  Capture();  // Caches this thread's stack bounds.
  uintptr_t lo = 0, hi = 0;
  g_merged = MappingHolding(reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), &lo, &hi) &&
             lo <= g_a_frame && g_a_frame < hi;
  g_step = 2;
  WaitFor(4);  // A's stack is unmapped now.
  garbage_call(g_a_frame, Capture);
  return nullptr;
}

TEST(StackBoundsTest, AFramePointerIntoAFreedNeighbourStackEndsTheWalk) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setguardsize(&attr, 0);
  // Above glibc's cache of thread stacks (40 MiB): unmapped when joined.
  pthread_attr_setstacksize(&attr, 64 << 20);
  pthread_t a, b;
  ASSERT_EQ(pthread_create(&a, &attr, ThreadA, nullptr), 0);
  WaitFor(1);
  ASSERT_EQ(pthread_create(&b, &attr, ThreadB, nullptr), 0);
  WaitFor(2);
  g_step = 3;
  pthread_join(a, nullptr);
  g_step = 4;
  pthread_join(b, nullptr);
  pthread_attr_destroy(&attr);
  EXPECT_TRUE(g_merged) << "the two stacks were not one mapping: nothing was tested";
  EXPECT_GE(g_depth, 1);  // Capture's caller; the walk stopped at the bad frame.
}

// A frame pointer holding a small negative number (in code built without
// frame pointers rbp is a general register): above every frame, so the walk
// takes it, and its record's end wraps around to a small address that
// passed the bound check.
TEST(StackBoundsTest, AFramePointerNearTheTopOfTheAddressSpaceEndsTheWalk) {
  FramePointersOnly fp;
  for (const intptr_t value : {-8, -16, -24}) {
    g_depth = -1;
    garbage_call(uintptr_t(value), Capture);
    EXPECT_GE(g_depth, 1) << value;
  }
}

// A coroutine whose stack is the start of a mapping of its own (as
// coroutine libraries map them; from the heap it is the same). Its first
// capture is the thread's first: the thread's bounds must not become that
// mapping, whose tail is unmapped before a frame pointer points there.
constexpr size_t kRegion = 1 << 20;
constexpr size_t kCoroutineStack = 256 << 10;
char* g_region = nullptr;
ucontext_t g_thread_ctx, g_coroutine_ctx;
int g_coroutine_depths[2] = {-1, -1};

void Coroutine() {
  Capture();
  g_coroutine_depths[0] = g_depth;
  swapcontext(&g_coroutine_ctx, &g_thread_ctx);
  garbage_call(reinterpret_cast<uintptr_t>(g_region) + kRegion / 2, Capture);
  g_coroutine_depths[1] = g_depth;
  swapcontext(&g_coroutine_ctx, &g_thread_ctx);
}

// Captures on another stack walk no frame (RELIABILITY.md), in every mode:
// the CFI walk handed them to libgcc, which read wherever the coroutine's
// rules led (above an mmap()ed stack, for a trampoline entered by a jump).
void CoroutineCaptures(UnwindMode mode) {
  ScopedUnwindMode scoped(mode);
  g_coroutine_depths[0] = g_coroutine_depths[1] = -1;
  g_region = static_cast<char*>(
      mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(g_region, MAP_FAILED);
  int own_depth = -1;
  std::thread t([&] {
    getcontext(&g_coroutine_ctx);
    g_coroutine_ctx.uc_stack.ss_sp = g_region;
    g_coroutine_ctx.uc_stack.ss_size = kCoroutineStack;
    makecontext(&g_coroutine_ctx, Coroutine, 0);
    swapcontext(&g_thread_ctx, &g_coroutine_ctx);  // The thread's first capture.
    munmap(g_region + kCoroutineStack, kRegion - kCoroutineStack);
    swapcontext(&g_thread_ctx, &g_coroutine_ctx);  // Into the unmapped part: no read.
    Capture();
    own_depth = g_depth;
  });
  t.join();
  munmap(g_region, kCoroutineStack);
  // The thread's own stack keeps its frames.
  EXPECT_EQ(g_coroutine_depths[0], 0);
  EXPECT_EQ(g_coroutine_depths[1], 0);
  EXPECT_GE(own_depth, 2);
}

TEST(StackBoundsTest, ACoroutineStackThatGoesAwayIsNeverReadAfterwards) {
  CoroutineCaptures(UnwindMode::kFramePointers);
}

TEST(StackBoundsTest, TheCfiWalkReadsNoCoroutineStack) { CoroutineCaptures(UnwindMode::kCfi); }

// A rule that leads outside the thread's stack ends the CFI walk at that
// frame: libgcc, which the walk handed such a stack to, loaded from 1 GiB
// above the stack and the capture faulted (in a lock of the host program).
TEST(StackBoundsTest, ACfaOutsideTheStackEndsTheCfiWalkThere) {
  ScopedUnwindMode cfi(UnwindMode::kCfi);
  bad_cfa_call(Capture);
  EXPECT_EQ(g_depth, 1);  // The return address into bad_cfa_call, then nothing.
}

// The top of [stack]: the end of the main thread's stack.
uintptr_t MainStackTop() {
  uintptr_t lo = 0, hi = 0;
  int here = 0;
  return MappingHolding(reinterpret_cast<uintptr_t>(&here), &lo, &hi) ? hi : 0;
}

// The first capture of the main thread with no file descriptor left (and so
// no /proc/self/maps) caches no guess: a guess of [frame, frame + 1 MiB)
// ran past the top of [stack] into unmapped memory.
TEST(StackBoundsTest, BoundsThatCannotBeReadAreNotGuessed) {
  FramePointersOnly fp;
  const uintptr_t top = MainStackTop();
  ASSERT_NE(top, 0u);
  using lockprof::agent::tls_state;
  tls_state.stack_lo = tls_state.stack_hi = 0;  // As before this thread's first capture.
  rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  const int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(probe, 0);
  close(probe);
  rlimit few = old;
  few.rlim_cur = rlim_t(probe) + 16;  // Few enough to use up.
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &few), 0);
  std::vector<int> fds;
  for (int fd; (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fds.push_back(fd);
  Capture();
  const int starved_depth = g_depth;
  for (int fd : fds) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_GT(fds.size(), 0u);
  EXPECT_EQ(starved_depth, 0);
  garbage_call(top + 4096, Capture);  // Above [stack]: never read.
  EXPECT_GE(g_depth, 1);
  Capture();
  EXPECT_GE(g_depth, 2);
}

char* g_deepest = nullptr;
__attribute__((noinline)) int CaptureBelow(size_t bytes) {
  char* p = static_cast<char*>(__builtin_alloca(bytes));
  std::memset(p, 1, bytes);  // The kernel grows [stack] down to here.
  asm volatile("" : : "r"(p) : "memory");
  g_deepest = p;
  Capture();
  return g_depth;
}

// The main thread's stack grows down after its bounds are read: frames
// below what [stack] was then are still its own (down to RLIMIT_STACK; with
// no limit, only what [stack] was).
TEST(StackBoundsTest, TheMainStackKeepsItsFramesAsItGrows) {
  FramePointersOnly fp;
  using lockprof::agent::tls_state;
  tls_state.stack_lo = tls_state.stack_hi = 0;
  uintptr_t lo_then = 0, hi = 0;
  int here = 0;
  ASSERT_TRUE(MappingHolding(reinterpret_cast<uintptr_t>(&here), &lo_then, &hi));
  Capture();
  ASSERT_GE(g_depth, 2);
  rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_STACK, &limit), 0);
  const int deep = CaptureBelow(2 << 20);
  // Otherwise nothing was tested: [stack] reached that deep already.
  ASSERT_LT(reinterpret_cast<uintptr_t>(g_deepest), lo_then);
  if (limit.rlim_cur == RLIM_INFINITY) {
    EXPECT_EQ(deep, 0);
  } else {
    ASSERT_GE(limit.rlim_cur, rlim_t{4} << 20) << "too small a stack for this test";
    EXPECT_GE(deep, 2);
  }
}

// An object with a zero second word, where a frame pointer of code built
// without them may point: in the fallback mode (the interposer's), the walk
// that ends there must not pass for a whole stack, and the CFI unwinder
// must run.
uintptr_t g_object = 0;
int g_fallback_depth = -1, g_libgcc_depth = -1;
__attribute__((noinline)) void CaptureBoth() {
  lockprof::agent::StackTrace st, lg;
  lockprof::agent::CaptureStack(__builtin_frame_address(0), &st);
  lockprof::agent::CaptureStackLibgcc(__builtin_frame_address(0), &lg);
  g_fallback_depth = st.depth;
  g_libgcc_depth = lg.depth;
  asm volatile("");
}
void PointAtObject() { garbage_call(g_object, CaptureBoth); }

TEST(StackBoundsTest, AZeroWordUnderAStrayFramePointerIsNotTheRoot) {
  const UnwindMode was = lockprof::agent::CurrentUnwindMode();
  lockprof::agent::SetUnwindMode(UnwindMode::kFallback);
  struct {
    void* data;
    uintptr_t size;
  } empty_string = {&g_object, 0};
  g_object = reinterpret_cast<uintptr_t>(&empty_string);
  asm volatile("" : : "r"(&empty_string) : "memory");
  lockprof::testing::NestSmallFrames(10, PointAtObject);
  lockprof::agent::SetUnwindMode(was);
  EXPECT_GE(g_libgcc_depth, 12);
  EXPECT_EQ(g_fallback_depth, g_libgcc_depth);
}

}  // namespace
#endif  // __x86_64__
