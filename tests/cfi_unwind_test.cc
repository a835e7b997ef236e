// The cached CFI walk (agent/record/frame_rules.h) against libgcc's
// _Unwind_Backtrace, from the same frame, through code built without frame
// pointers (unwind/frames.cc): both must give the same stack, frame for
// frame.
#include <gtest/gtest.h>
#include <pthread.h>

#include <thread>

#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/agent/record/frame_rules.h"
#include "lockprof/agent/record/stack_trace.h"
#include "unwind/frames.h"

namespace lockprof::agent {
namespace {

struct Captured {
  bool cached_ok = false;
  StackTrace cached, cached_again, libgcc;
};
Captured g_captured;

// The entry function (with a frame pointer, as lockprof's are): captures its
// caller's stack both ways, the cached one twice (cold, then warm).
__attribute__((noinline)) void CaptureBothWays() {
  const void* frame = __builtin_frame_address(0);
  StackTrace bounds;
  CaptureStackWithoutFallback(frame, &bounds);  // Loads the stack bounds.
  g_captured = Captured{};
  g_captured.cached_ok = CaptureStackCfiCached(frame, &g_captured.cached);
  CaptureStackCfiCached(frame, &g_captured.cached_again);
  CaptureStackLibgcc(frame, &g_captured.libgcc);
  asm volatile("");
}

void ExpectSameStacks(const char* what) {
  SCOPED_TRACE(what);
  ASSERT_TRUE(g_captured.cached_ok);
  const StackTrace& a = g_captured.cached;
  const StackTrace& b = g_captured.libgcc;
  ASSERT_GT(b.depth, 3);
  ASSERT_EQ(a.depth, b.depth);
  for (int i = 0; i < a.depth; ++i) EXPECT_EQ(a.pcs[i], b.pcs[i]) << "frame " << i;
  ASSERT_EQ(g_captured.cached_again.depth, a.depth);
  for (int i = 0; i < a.depth; ++i) EXPECT_EQ(g_captured.cached_again.pcs[i], a.pcs[i]);
}

TEST(CfiUnwindTest, SmallFramesWithoutFramePointers) {
  lockprof::testing::NestSmallFrames(5, CaptureBothWays);
  ExpectSameStacks("small frames");
}

TEST(CfiUnwindTest, LargeFrames) {
  lockprof::testing::NestLargeFrames(3, CaptureBothWays);
  ExpectSameStacks("64 KiB frames");
}

TEST(CfiUnwindTest, FramesWhoseCfaIsComputedFromRbp) {
  lockprof::testing::NestDynamicFrames(6, 40, CaptureBothWays);
  ExpectSameStacks("variable-length arrays");
  const FrameRule rule = DecodeFrameRule(g_captured.libgcc.pcs[1]);
  EXPECT_EQ(rule.kind, FrameRule::kUnwind);
  EXPECT_TRUE(rule.cfa_from_rbp);
  EXPECT_TRUE(rule.rbp_saved);
}

TEST(CfiUnwindTest, ThroughGlibcsQsort) {
  lockprof::testing::ThroughQsort(CaptureBothWays);
  ExpectSameStacks("qsort");
}

TEST(CfiUnwindTest, DeeperThanTheCapKeepsTheLeafEnd) {
  lockprof::testing::NestSmallFrames(2 * kMaxStackDepth, CaptureBothWays);
  ExpectSameStacks("deep");
  EXPECT_EQ(g_captured.cached.depth, kMaxStackDepth);
}

TEST(CfiUnwindTest, AThreadsStackEndsAtItsStart) {
  std::thread([] { lockprof::testing::NestSmallFrames(3, CaptureBothWays); }).join();
  ExpectSameStacks("thread");
  // The outermost frame (clone3's) marks its return address undefined.
  const StackTrace& st = g_captured.cached;
  EXPECT_EQ(FindFrameRule(st.pcs[st.depth - 1]).kind, FrameRule::kEnd);
}

TEST(CfiUnwindTest, SmallFramesHaveRspBasedRules) {
  lockprof::testing::NestSmallFrames(2, CaptureBothWays);
  ASSERT_TRUE(g_captured.cached_ok);
  // pcs[0] returns into NestSmallFrames, which saves no rbp and keeps its
  // CFA above rsp; its return address is just below the CFA.
  const FrameRule rule = DecodeFrameRule(g_captured.cached.pcs[0]);
  EXPECT_EQ(rule.kind, FrameRule::kUnwind);
  EXPECT_FALSE(rule.cfa_from_rbp);
  EXPECT_EQ(rule.ra_offset, -8);
  EXPECT_GT(rule.cfa_offset, 8);
}

// In the fallback mode (the interposer's) a function without a frame
// pointer that takes a lock leaves rbp to its caller's frame, so the
// frame-pointer walk went from its return address to its caller's caller,
// skipping the caller (the application's call site), and still ended at
// the thread's root, where the fallback did not look further. The rule at
// the leaf's return address now sends such a capture to the CFI walk.
StackTrace g_fallback;
__attribute__((noinline)) void CaptureInFallbackMode() {
  const void* frame = __builtin_frame_address(0);
  g_captured = Captured{};
  CaptureStack(frame, &g_fallback);
  CaptureStackLibgcc(frame, &g_captured.libgcc);
  asm volatile("");
}

// A thread started by pthread_create itself (not std::thread, whose start
// runs through libstdc++, built without frame pointers: a walk through it
// never ends cleanly, and the fallback runs anyway).
__attribute__((noinline)) void* CallsAFunctionWithoutAFramePointer(void*) {
  lockprof::testing::NestSmallFrames(0, CaptureInFallbackMode);
  asm volatile("");
  return nullptr;
}

TEST(CfiUnwindTest, TheFallbackKeepsTheCallerOfAFunctionWithoutAFramePointer) {
  const UnwindMode was = CurrentUnwindMode();
  SetUnwindMode(UnwindMode::kFallback);
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, CallsAFunctionWithoutAFramePointer, nullptr), 0);
  pthread_join(t, nullptr);
  SetUnwindMode(was);
  const StackTrace& lg = g_captured.libgcc;
  ASSERT_GT(lg.depth, 2);
  ASSERT_EQ(g_fallback.depth, lg.depth);
  for (int i = 0; i < lg.depth; ++i) EXPECT_EQ(g_fallback.pcs[i], lg.pcs[i]) << "frame " << i;
}

}  // namespace
}  // namespace lockprof::agent
