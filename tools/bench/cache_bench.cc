// The reference guide's cache workload: readers (Get) and writers (Set) on
// one map behind one lock, at 2 threads and every thread count up to the
// machine's, for std::mutex, std::shared_mutex and absl::Mutex (readers
// share both), and lockprof::Mutex (and lockprof::SharedMutex, readers
// sharing, where the tree has it) with profiling off, at its defaults, with every rate at
// 1, and at Go's "everything on" (mutex fraction 1, block rate 1). The same
// workload in Go is tools/bench/go/cache_bench.go.
//
// The guide's Set sleeps inside the lock to make the contention obvious; a
// benchmark of the lock keeps the work inside short and real instead: a
// lookup or an assignment in a 1024-key std::unordered_map of short strings
// (no allocation). One operation in ten is a Set, keys uniformly random.
//
// Names: "cache/<lock>[/lat]/real_time/threads:<n>"; "/lat" rows also time
// each acquisition (p50/p99/p99.9 counters).
#include <benchmark/benchmark.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/attributes.h"
#include "bench_util.h"

namespace {

using bench::Profiling;

constexpr int kKeys = 1024;
constexpr int kWriteOneIn = 10;

const std::vector<std::string>& Keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (int i = 0; i < kKeys; ++i) k.push_back("key-" + std::to_string(i));
    return k;
  }();
  return keys;
}

// Each part on cache lines of its own, so that the rows compare the locks'
// protocols and not where their words fall: with the lock, the hand-off
// counter and the map's header on one line, a smaller lock shares that line
// with more of them.
template <typename M>
struct Cache {
  alignas(64) M mu;
  alignas(64) std::atomic<const void*> last_owner{nullptr};
  alignas(64) std::unordered_map<std::string, std::string> data;
  Cache() {
    for (const std::string& k : Keys()) data[k] = "value";
  }
};

// xorshift64: a different key and operation for every iteration, without
// a shared generator.
struct Rng {
  uint64_t x;
  uint64_t Next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
};

template <typename M, bool kTimed>
void BM_Cache(benchmark::State& state, Profiling p) {
  static Cache<M> cache;
  if (state.thread_index() == 0) bench::ApplyProfiling(p);
  const std::vector<std::string>& keys = Keys();
  Rng rng{0x9E3779B97F4A7C15ull * uint64_t(state.thread_index() + 1)};
  uint64_t r = 0;
  std::string got;
  static const std::string kValue = "value-2";
  bench::ContendedLoop<kTimed>(
      state, cache.mu, cache.last_owner,
      [&](uint64_t) {
        r = rng.Next();
        return r % kWriteOneIn == 0;
      },
      [&](bool is_write) {
        const std::string& key = keys[(r >> 8) % kKeys];
        if (is_write) {
          cache.data[key] = kValue;  // Set
        } else {
          auto it = cache.data.find(key);  // Get
          got = it == cache.data.end() ? std::string() : it->second;
        }
      });
  benchmark::DoNotOptimize(got);
}

const bool registered = [] {
  using bench::kAll;
  using bench::kDefault;
  using bench::kGoAll;
  using bench::kOff;
  Keys();
  for (bool timed : {false, true}) {
    bench::ForEachLock(true, {kOff, kDefault, kAll, kGoAll, bench::kLockOrder},
                       [&](auto type, const std::string& name, Profiling p) {
                         using M = typename decltype(type)::type;
                         auto* fn = timed ? BM_Cache<M, true> : BM_Cache<M, false>;
                         bench::AtContendedThreadCounts(benchmark::RegisterBenchmark(
                             ("cache/" + name + (timed ? "/lat" : "")).c_str(), fn, p));
                       });
  }
  return true;
}();

}  // namespace
