// lockprof::ScopedLabels per request: constructing and destroying a 2-label
// scope, {endpoint, tenant}, whose labels were seen before (the steady state
// of a server), at 1 to 16 threads. Time is wall time per scope on each
// thread: flat as threads are added means scopes do not contend (no lock is
// taken once a label set was seen; agent/labels.h).
#include <benchmark/benchmark.h>

#include "lockprof/lockprof.h"

namespace {

void BM_ScopedLabels2(benchmark::State& state) {
  const char* endpoint = state.thread_index() % 2 ? "/api/cart" : "/api/home";
  for (auto _ : state) {
    lockprof::ScopedLabels labels({{"endpoint", endpoint}, {"tenant", "acme"}});
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_ScopedLabels2)->ThreadRange(1, 16)->UseRealTime();

}  // namespace
