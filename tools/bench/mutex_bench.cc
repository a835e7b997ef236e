// lockprof::Mutex against std::mutex and absl::Mutex, uncontended and
// contended (2 threads, empty critical section), with lockprof's profiling
// off, at its default rates, and with every rate at 1.
#include <benchmark/benchmark.h>

#include <mutex>

#include "absl/synchronization/mutex.h"
#include "lockprof/lockprof.h"

namespace {

// Profiling configurations for lockprof's rows.
enum Profiling { kOff, kDefault, kAll };

void ApplyProfiling(Profiling p) {
  static const int default_fraction = lockprof::SetMutexProfileFraction(-1);
  static const int64_t default_block = lockprof::BlockProfileRate();
  static const int default_hold = lockprof::SetHoldProfileRate(-1);
  switch (p) {
    case kOff:
      lockprof::SetMutexProfileFraction(0);
      lockprof::SetBlockProfileRate(0);
      lockprof::SetHoldProfileRate(0);
      break;
    case kDefault:
      lockprof::SetMutexProfileFraction(default_fraction);
      lockprof::SetBlockProfileRate(default_block);
      lockprof::SetHoldProfileRate(default_hold);
      break;
    case kAll:
      lockprof::SetMutexProfileFraction(1);
      lockprof::SetBlockProfileRate(1);
      lockprof::SetHoldProfileRate(1);
      break;
  }
}

template <typename M>
void Lock(M& m) {
  m.lock();
}
template <>
void Lock(absl::Mutex& m) {
  m.Lock();
}
template <typename M>
void Unlock(M& m) {
  m.unlock();
}
template <>
void Unlock(absl::Mutex& m) {
  m.Unlock();
}

template <typename M>
void BM_Uncontended(benchmark::State& state) {
  static M mu;
  for (auto _ : state) {
    Lock(mu);
    benchmark::ClobberMemory();
    Unlock(mu);
  }
}

template <typename M>
void BM_Contended(benchmark::State& state) {
  static M mu;
  static int64_t counter = 0;
  for (auto _ : state) {
    Lock(mu);
    ++counter;
    Unlock(mu);
  }
  benchmark::DoNotOptimize(counter);
}

void BM_LockprofUncontended(benchmark::State& state) {
  if (state.thread_index() == 0) ApplyProfiling(Profiling(state.range(0)));
  BM_Uncontended<lockprof::Mutex>(state);
}

void BM_LockprofContended(benchmark::State& state) {
  if (state.thread_index() == 0) ApplyProfiling(Profiling(state.range(0)));
  BM_Contended<lockprof::Mutex>(state);
}

BENCHMARK_TEMPLATE(BM_Uncontended, std::mutex);
BENCHMARK_TEMPLATE(BM_Uncontended, absl::Mutex);
// Arg: 0 = profiling off, 1 = default rates, 2 = every rate at 1.
BENCHMARK(BM_LockprofUncontended)->Arg(kOff)->Arg(kDefault)->Arg(kAll);
BENCHMARK_TEMPLATE(BM_Contended, std::mutex)->Threads(2)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Contended, absl::Mutex)->Threads(2)->UseRealTime();
BENCHMARK(BM_LockprofContended)->Arg(kOff)->Arg(kDefault)->Arg(kAll)->Threads(2)->UseRealTime();

}  // namespace
