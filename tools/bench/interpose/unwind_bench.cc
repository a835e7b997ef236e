// The cost of one stack capture on the recording path, by unwinding mode
// (agent/cfi_unwind.h): the frame-pointer walk, and the CFI unwinding
// (what the interposer falls back to for code without frame pointers), from
// 20 frames deep.
//
// Names: "capture_stack/fp", "capture_stack/cfi" (the cached CFI rules,
// libgcc where they cannot), "capture_stack/libgcc" (libgcc's alone).
#include <benchmark/benchmark.h>

#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/agent/record/stack_trace.h"

namespace {

using CaptureFn = void (*)(const void* entry_frame, lockprof::agent::StackTrace* out);

__attribute__((noinline)) void Capture(CaptureFn capture, lockprof::agent::StackTrace* out) {
  capture(__builtin_frame_address(0), out);
  asm volatile("");
}

__attribute__((noinline)) int Nest(int depth, CaptureFn capture, lockprof::agent::StackTrace* out) {
  if (depth == 0) {
    Capture(capture, out);
  } else {
    Nest(depth - 1, capture, out);
  }
  asm volatile("");
  return out->depth;
}

void BM_Capture(benchmark::State& state, lockprof::agent::UnwindMode mode) {
  lockprof::agent::SetUnwindMode(mode);
  lockprof::agent::StackTrace st;
  for (auto _ : state) benchmark::DoNotOptimize(Nest(20, lockprof::agent::CaptureStack, &st));
  state.counters["frames"] = st.depth;
  lockprof::agent::SetUnwindMode(lockprof::agent::UnwindMode::kFramePointers);
}
BENCHMARK_CAPTURE(BM_Capture, fp, lockprof::agent::UnwindMode::kFramePointers)
    ->Name("capture_stack/fp");
BENCHMARK_CAPTURE(BM_Capture, cfi, lockprof::agent::UnwindMode::kCfi)->Name("capture_stack/cfi");

// libgcc's _Unwind_Backtrace alone, without the cached rules.
void BM_CaptureLibgcc(benchmark::State& state) {
  lockprof::agent::StackTrace st;
  for (auto _ : state) {
    benchmark::DoNotOptimize(Nest(20, lockprof::agent::CaptureStackLibgcc, &st));
  }
  state.counters["frames"] = st.depth;
}
BENCHMARK(BM_CaptureLibgcc)->Name("capture_stack/libgcc");

}  // namespace

BENCHMARK_MAIN();
