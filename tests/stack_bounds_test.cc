// The frame-pointer walk reads memory only inside the calling thread's
// stack, even where the mapping its stack lies in is wider: thread stacks
// created without a guard page merge into one mapping, and part of it may
// be unmapped later (a thread joined). In code built without frame
// pointers the frame pointer is any value, here one that points into such
// a freed stack: the walk must stop, not fault.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "lockprof/agent/record/stack_trace.h"

#if defined(__x86_64__)
// garbage_call(rbp, fn): calls fn with rbp set to `rbp`, as code built
// without frame pointers may leave it (a general register there).
extern "C" void garbage_call(uintptr_t rbp, void (*fn)());
asm(R"(
  .text
  .globl garbage_call
  .type garbage_call,@function
garbage_call:
  push %rbp
  mov %rdi, %rbp
  call *%rsi
  pop %rbp
  ret
  .size garbage_call, .-garbage_call
)");

namespace {

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

}  // namespace
#endif  // __x86_64__
