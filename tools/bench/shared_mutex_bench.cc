// lockprof::SharedMutex against std::shared_mutex (and absl::Mutex's reader
// lock): uncontended read and write lock/unlock, read-only and read-mostly
// (1 write in 100 operations) loops on 1 and 2 threads. lockprof rows run
// with profiling off and at the default rates (Arg 0 / 1).
#include <benchmark/benchmark.h>

#include <initializer_list>
#include <shared_mutex>

#include "absl/synchronization/mutex.h"
#include "bench_util.h"
#include "lockprof/lockprof.h"

namespace {

// absl::Mutex under the std names.
struct AbslShared {
  absl::Mutex mu;
  void lock() { mu.Lock(); }
  void unlock() { mu.Unlock(); }
  void lock_shared() { mu.ReaderLock(); }
  void unlock_shared() { mu.ReaderUnlock(); }
};

// Arg 0: every lockprof sampler off; Arg 1: the default rates, as the
// process started with them (bench_util remembers them before any row runs:
// taken here at first use, they were whatever the previous row had set,
// every rate at 1 when an all_1 row ran just before).
void ApplyRates(benchmark::State& state) {
  if (state.thread_index() != 0) return;
  bench::ApplyProfiling(state.range(0) != 0 ? bench::kDefault : bench::kOff);
}

template <typename M>
void BM_ReadUncontended(benchmark::State& state) {
  if (state.range(0) >= 0) ApplyRates(state);
  static M mu;
  for (auto _ : state) {
    mu.lock_shared();
    benchmark::ClobberMemory();
    mu.unlock_shared();
  }
}

template <typename M>
void BM_WriteUncontended(benchmark::State& state) {
  if (state.range(0) >= 0) ApplyRates(state);
  static M mu;
  for (auto _ : state) {
    mu.lock();
    benchmark::ClobberMemory();
    mu.unlock();
  }
}

// Every thread reads a shared table under the read lock; one operation in
// `state.range(1)` (0: none) is a write. Items = operations.
template <typename M>
void BM_ReadMostly(benchmark::State& state) {
  if (state.range(0) >= 0) ApplyRates(state);
  static M mu;
  static int64_t table[8];
  const int64_t write_every = state.range(1);
  int64_t n = 0, sum = 0;
  for (auto _ : state) {
    if (write_every > 0 && ++n % write_every == 0) {
      mu.lock();
      ++table[n & 7];
      mu.unlock();
    } else {
      mu.lock_shared();
      sum += table[n & 7];
      mu.unlock_shared();
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}

// Args: {rates, write_every}; rates -1 for the std and absl rows, 0
// (profiling off) and 1 (default rates) for lockprof's.
void ReadMostlyArgs(benchmark::internal::Benchmark* b, std::initializer_list<int64_t> rates) {
  for (int64_t write_every : {0, 100}) {
    for (int64_t r : rates) b->Args({r, write_every});
  }
  b->Threads(1)->Threads(2)->UseRealTime();
}
void OtherArgs(benchmark::internal::Benchmark* b) { ReadMostlyArgs(b, {-1}); }
void LockprofArgs(benchmark::internal::Benchmark* b) { ReadMostlyArgs(b, {0, 1}); }

BENCHMARK_TEMPLATE(BM_ReadUncontended, std::shared_mutex)->Arg(-1);
BENCHMARK_TEMPLATE(BM_ReadUncontended, AbslShared)->Arg(-1);
BENCHMARK_TEMPLATE(BM_ReadUncontended, lockprof::SharedMutex)->Arg(0)->Arg(1);
BENCHMARK_TEMPLATE(BM_WriteUncontended, std::shared_mutex)->Arg(-1);
BENCHMARK_TEMPLATE(BM_WriteUncontended, AbslShared)->Arg(-1);
BENCHMARK_TEMPLATE(BM_WriteUncontended, lockprof::SharedMutex)->Arg(0)->Arg(1);
BENCHMARK_TEMPLATE(BM_ReadMostly, std::shared_mutex)->Apply(OtherArgs);
BENCHMARK_TEMPLATE(BM_ReadMostly, AbslShared)->Apply(OtherArgs);
BENCHMARK_TEMPLATE(BM_ReadMostly, lockprof::SharedMutex)->Apply(LockprofArgs);

}  // namespace
