// lockprof::ShardedCounter: a counter that many threads can increment at
// once without fighting over one cache line.
//
// Every increment of a std::atomic<int64_t> takes the cache line holding it
// away from every other core: with several threads incrementing, each
// increment waits for the line, and adding threads adds no throughput.
// Moving a hot counter from under a mutex into one atomic removes the lock,
// not the contention. ShardedCounter keeps one
// cache-line-sized shard per thread slot; Add touches only the calling
// thread's shard, so increments from different threads proceed in parallel.
// Load pays instead: it sums every shard.
//
//   lockprof::ShardedCounter requests{"http.requests"};
//   requests.Add(1);                // hot path: one uncontended CAS
//   int64_t total = requests.Load();  // scrape path: sums the shards
//
// When to use it: a counter incremented by several threads far more often
// than it is read (request counts, bytes served, cache hits), when a
// std::atomic shows up in CPU profiles or the counter's line ping-pongs. For
// a counter one thread increments, or that is read as often as written, a
// plain std::atomic<int64_t> is smaller and as fast.
//
// Threads get shard slots round-robin, on their first Add to any
// ShardedCounter (one sequence for all counters, and a slot is not reused
// when its thread exits): with no more threads started than shards, no two
// share a shard; as threads come and go, running threads may. Threads that
// do share one still count exactly (each shard is updated by
// compare-and-swap), and their collisions are profiled: the CAS retries
// appear in /debug/pprof/cas with lock="<name>" at the function that called
// Add, the sign that the counter wants more shards.
//
// Semantics: Load and Reset are not snapshots. An Add that happens before a
// Load (or Reset) begins is counted by it; an Add concurrent with it is
// counted by it or by the next one, never by both and never lost. Reset takes
// each shard's value atomically and returns their sum, so Reset() is an exact
// read-and-clear even under concurrent Adds. Values wrap as int64_t does
// under fetch_add (two's complement).
//
// Cost: Add is one load and one compare-and-swap on a line the thread
// normally owns, plus one thread-local read. Load and Reset touch
// shard_count() cache lines. Memory: 64 bytes per shard.
//
// Thread-safety: every method may be called concurrently. Not copyable or
// movable.
#ifndef LOCKPROF_PRIMITIVES_SHARDED_COUNTER_H_
#define LOCKPROF_PRIMITIVES_SHARDED_COUNTER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/attributes.h"
#include "lockprof/agent/base/export.h"
#include "lockprof/primitives/internal/cas_loop.h"
#include "lockprof/primitives/internal/shard_count.h"
#include "lockprof/primitives/lock_name.h"

namespace lockprof {
namespace internal {

// This thread's shard slot, 1-based; 0 until its first Add. In initial-exec
// TLS: reading it is one %fs-relative load.
LOCKPROF_EXPORT extern thread_local uint32_t tls_shard_slot
    __attribute__((tls_model("initial-exec")));

// Gives this thread the next slot, round-robin, and returns it.
LOCKPROF_EXPORT uint32_t AssignShardSlot();

}  // namespace internal

class LOCKPROF_EXPORT ShardedCounter {
 public:
  // More shards than this only make Load slower: larger requests are
  // clamped to it.
  static constexpr size_t kMaxShards = internal::kMaxShards;

  // `shards` is rounded up to a power of two, at most kMaxShards; 0 picks
  // 4 x the number of CPUs (at least 8). `name` (a string literal or const
  // array: see lock_name.h) labels the counter's samples lock="<name>". Not
  // copied.
  explicit ShardedCounter(LockName name = nullptr, size_t shards = 0);
  ShardedCounter(const ShardedCounter&) = delete;
  ShardedCounter& operator=(const ShardedCounter&) = delete;

  // Adds `delta` (which may be negative) to the calling thread's shard.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Add(int64_t delta) {
    uint32_t slot = internal::tls_shard_slot;
    if (__builtin_expect(slot == 0, 0)) slot = internal::AssignShardSlot();
    auto add = [delta](int64_t v) {
      // Wrapping, as fetch_add does, without signed-overflow UB.
      return int64_t(uint64_t(v) + uint64_t(delta));
    };
    internal::CasUpdate(shards_[slot & mask_].value, add, std::memory_order_relaxed, name_);
  }
  void Increment() { Add(1); }

  // The sum of every shard.
  int64_t Load() const;
  // Zeroes every shard; returns the sum removed.
  int64_t Reset();

  size_t shard_count() const { return mask_ + 1; }
  const char* name() const { return name_; }

 private:
  // One per cache line: no two shards share a line, so no false sharing.
  struct alignas(64) Shard {
    std::atomic<int64_t> value{0};
  };

  const char* const name_;
  const size_t mask_;
  const std::unique_ptr<Shard[]> shards_;
};

}  // namespace lockprof

#endif  // LOCKPROF_PRIMITIVES_SHARDED_COUNTER_H_
