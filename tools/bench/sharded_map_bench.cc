// A concurrent map under a balanced read/write load (50%
// Get, 50% Set, uniformly random keys out of 65536, all present), at 1 and 2
// threads. lockprof::ShardedMap (16 shards) against one lockprof::SharedMutex
// around a std::unordered_map, and around an absl::flat_hash_map (the
// container ShardedMap's shards use), which separates what sharding buys
// from what the container does. Compare items_per_second.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "lockprof/lockprof.h"

namespace {

constexpr uint64_t kKeys = 1 << 16;

// One SharedMutex around one map: the design being replaced.
template <typename Map>
class LockedMap {
 public:
  std::optional<uint64_t> Get(uint64_t key) const {
    std::shared_lock<lockprof::SharedMutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  void Set(uint64_t key, uint64_t value) {
    std::lock_guard<lockprof::SharedMutex> lock(mu_);
    map_[key] = value;
  }

 private:
  mutable lockprof::SharedMutex mu_{"bench.single_lock_map"};
  Map map_;
};

template <typename M>
M& Populated() {
  static M* map = [] {
    auto* m = new M;
    for (uint64_t k = 0; k < kKeys; ++k) m->Set(k, k);
    return m;
  }();
  return *map;
}

template <typename M>
void BM_BalancedMap(benchmark::State& state) {
  M& map = Populated<M>();
  uint64_t rng = 0x9E3779B97F4A7C15ull * uint64_t(state.thread_index() + 1);
  uint64_t sum = 0;
  for (auto _ : state) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    const uint64_t key = rng % kKeys;
    if (rng >> 63) {
      map.Set(key, rng);
    } else if (std::optional<uint64_t> v = map.Get(key)) {
      sum += *v;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}

using ShardedMap16 = lockprof::ShardedMap<uint64_t, uint64_t>;
using SharedMutexUnorderedMap = LockedMap<std::unordered_map<uint64_t, uint64_t>>;
using SharedMutexFlatHashMap = LockedMap<absl::flat_hash_map<uint64_t, uint64_t>>;

BENCHMARK_TEMPLATE(BM_BalancedMap, ShardedMap16)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK_TEMPLATE(BM_BalancedMap, SharedMutexUnorderedMap)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK_TEMPLATE(BM_BalancedMap, SharedMutexFlatHashMap)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
