// lockprof::ShardedCounter::Add against fetch_add on one std::atomic<int64_t>,
// at 1 and 2 threads: the single atomic's cache line ping-pongs between
// cores, the shards do not. Compare items_per_second (all threads together).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>

#include "lockprof/lockprof.h"

namespace {

void BM_StdAtomicFetchAdd(benchmark::State& state) {
  static std::atomic<int64_t> counter{0};
  for (auto _ : state) counter.fetch_add(1, std::memory_order_relaxed);
  state.SetItemsProcessed(state.iterations());
}

void BM_ShardedCounterAdd(benchmark::State& state) {
  static lockprof::ShardedCounter counter{"bench.sharded_counter"};
  for (auto _ : state) counter.Add(1);
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_StdAtomicFetchAdd)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_ShardedCounterAdd)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
