// The cost of one stack capture on the recording path, by unwinding mode
// (agent/cfi_unwind.h): the frame-pointer walk, and libgcc's CFI unwinder
// (what the interposer falls back to for code without frame pointers), from
// 20 frames deep.
//
// Names: "capture_stack/fp", "capture_stack/cfi".
#include <benchmark/benchmark.h>

#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/agent/record/stack_trace.h"

namespace {

__attribute__((noinline)) void Capture(lockprof::agent::StackTrace* out) {
  lockprof::agent::CaptureStack(__builtin_frame_address(0), out);
  asm volatile("");
}

__attribute__((noinline)) int Nest(int depth, lockprof::agent::StackTrace* out) {
  if (depth == 0) {
    Capture(out);
  } else {
    Nest(depth - 1, out);
  }
  asm volatile("");
  return out->depth;
}

void BM_Capture(benchmark::State& state, lockprof::agent::UnwindMode mode) {
  lockprof::agent::SetUnwindMode(mode);
  lockprof::agent::StackTrace st;
  for (auto _ : state) benchmark::DoNotOptimize(Nest(20, &st));
  state.counters["frames"] = st.depth;
  lockprof::agent::SetUnwindMode(lockprof::agent::UnwindMode::kFramePointers);
}
BENCHMARK_CAPTURE(BM_Capture, fp, lockprof::agent::UnwindMode::kFramePointers)
    ->Name("capture_stack/fp");
BENCHMARK_CAPTURE(BM_Capture, cfi, lockprof::agent::UnwindMode::kCfi)->Name("capture_stack/cfi");

}  // namespace

BENCHMARK_MAIN();
