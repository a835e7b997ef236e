// The hold sampler's cost on an uncontended lock+unlock, by sampling rate,
// next to std::mutex in the same run: the figures behind the default hold
// rate (agent/sampling.h). Only the hold sampler varies; the mutex and block
// samplers never run on an uncontended lock.
#include <benchmark/benchmark.h>

#include <mutex>

#include "lockprof/lockprof.h"

namespace {

void BM_HoldRateStdMutex(benchmark::State& state) {
  static std::mutex mu;
  for (auto _ : state) {
    mu.lock();
    benchmark::ClobberMemory();
    mu.unlock();
  }
}

// Arg: the hold rate (0 = hold sampling off).
void BM_HoldRateLockprof(benchmark::State& state) {
  static lockprof::Mutex mu;
  const int previous = lockprof::SetHoldProfileRate(int(state.range(0)));
  for (auto _ : state) {
    mu.lock();
    benchmark::ClobberMemory();
    mu.unlock();
  }
  lockprof::SetHoldProfileRate(previous);
}

BENCHMARK(BM_HoldRateStdMutex);
BENCHMARK(BM_HoldRateLockprof)->Arg(0)->Arg(1)->Arg(100)->Arg(1000)->Arg(10000)->Arg(100000);

}  // namespace
