#include "lockprof/primitives/sharded_counter.h"

#include <algorithm>
#include <thread>

namespace lockprof {
namespace internal {

thread_local uint32_t tls_shard_slot __attribute__((tls_model("initial-exec"))) = 0;

uint32_t AssignShardSlot() {
  static std::atomic<uint32_t> next{0};
  uint32_t slot;
  do {
    slot = next.fetch_add(1, std::memory_order_relaxed) + 1;
  } while (slot == 0);  // 0 means "unassigned": skip it when the counter wraps.
  tls_shard_slot = slot;
  return slot;
}

}  // namespace internal

namespace {

size_t ShardCountFor(size_t requested) {
  if (requested == 0) {
    // Slots are handed to threads, not CPUs; 4 x CPUs leaves room for more
    // threads than cores before two running threads are likely to share.
    requested = std::max<size_t>(8, 4 * size_t(std::max(1u, std::thread::hardware_concurrency())));
  }
  return internal::ShardCount(requested);
}

}  // namespace

ShardedCounter::ShardedCounter(LockName name, size_t shards)
    : name_(name.get()), mask_(ShardCountFor(shards) - 1), shards_(new Shard[mask_ + 1]) {}

int64_t ShardedCounter::Load() const {
  uint64_t sum = 0;
  for (size_t i = 0; i <= mask_; ++i) {
    sum += uint64_t(shards_[i].value.load(std::memory_order_relaxed));
  }
  return int64_t(sum);
}

int64_t ShardedCounter::Reset() {
  uint64_t sum = 0;
  for (size_t i = 0; i <= mask_; ++i) {
    sum += uint64_t(shards_[i].value.exchange(0, std::memory_order_relaxed));
  }
  return int64_t(sum);
}

}  // namespace lockprof
