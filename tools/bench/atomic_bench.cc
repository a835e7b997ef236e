// lockprof::Atomic<T>::Update against the CAS loop it replaces, written by
// hand on std::atomic: uncontended (the price of being profilable when
// nothing retries) and with 2 threads on one value (where retries are
// counted, timed and sampled at the default fraction, or with the CAS
// profile off).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>

#include "lockprof/lockprof.h"

namespace {

// The hand-written loop: what Update's inline part must cost no more than.
void BareCasIncrement(std::atomic<int64_t>& v) {
  int64_t old = v.load(std::memory_order_seq_cst);
  while (!v.compare_exchange_weak(old, old + 1, std::memory_order_seq_cst)) {
  }
}

void BM_BareCasLoop(benchmark::State& state) {
  static std::atomic<int64_t> value{0};
  for (auto _ : state) BareCasIncrement(value);
  state.SetItemsProcessed(state.iterations());
}

// Arg: the mutex profile fraction the CAS profile shares (0 = off, 10 =
// lockprof's default).
void BM_AtomicUpdate(benchmark::State& state) {
  static lockprof::Atomic<int64_t> value{"bench.atomic"};
  if (state.thread_index() == 0) lockprof::SetMutexProfileFraction(int(state.range(0)));
  for (auto _ : state) value.Update([](int64_t v) { return v + 1; });
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_BareCasLoop);
BENCHMARK(BM_AtomicUpdate)->Arg(10);
BENCHMARK(BM_BareCasLoop)->Threads(2)->UseRealTime();
BENCHMARK(BM_AtomicUpdate)->Arg(0)->Arg(10)->Threads(2)->UseRealTime();

}  // namespace
