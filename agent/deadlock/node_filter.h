// Which addresses were ever nodes of the lock-order graph (or locks with a
// self-deadlock report), so that destroying a lock that never was costs no
// mutex: a Bloom filter with one hash. A lock forgotten stays "maybe",
// which costs its address's next destruction one look under the graph's
// mutex, not a wrong answer; once a quarter of the bits are set (a process
// whose heap locks come and go, each a node for a while), the filter is
// rebuilt from the locks the graph holds, at most 4160 bits: never cleared,
// it said "maybe" of nearly every lock, and every destruction took the
// graph's mutex.
#ifndef LOCKPROF_AGENT_DEADLOCK_NODE_FILTER_H_
#define LOCKPROF_AGENT_DEADLOCK_NODE_FILTER_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "lockprof/agent/record/lock_lifetime.h"

namespace lockprof::agent::graph {

inline constexpr size_t kFilterWords = 1024;  // 8 KiB, zeroed static storage.
inline std::atomic<uint64_t> g_maybe_node[kFilterWords];
// Bits set; written under the graph's mutex, as every mark is.
inline std::atomic<size_t> g_maybe_bits{0};
inline constexpr size_t kCrowdedBits = kFilterWords * 64 / 4;

// Mixed before it is multiplied (a murmur3 finaliser's steps): a product
// alone maps the locks of an array, addresses in steps of their size, to
// bits in steps too, and two arrays of one type to nearly the same bits.
inline size_t FilterBit(const void* lock) {
  uint64_t x = reinterpret_cast<uintptr_t>(lock);
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  return size_t((x * 0x9E3779B97F4A7C15ull) >> 48) % (kFilterWords * 64);
}

// Marks `lock` as one ForgetLockOrderNode must look for, and the graph as
// used (lock_lifetime.h).
// Called under the graph's mutex.
inline void MarkMaybeNode(const void* lock) {
  const size_t bit = FilterBit(lock);
  const uint64_t mask = uint64_t{1} << (bit % 64);
  if ((g_maybe_node[bit / 64].fetch_or(mask, std::memory_order_relaxed) & mask) == 0) {
    g_maybe_bits.fetch_add(1, std::memory_order_relaxed);
  }
  g_lock_graph_used.store(true, std::memory_order_relaxed);
}

// Whether so many bits are set that the filter should be rebuilt.
inline bool FilterCrowded() { return g_maybe_bits.load(std::memory_order_relaxed) >= kCrowdedBits; }

// Rebuilds the filter from the locks the graph holds: `each_lock(mark)`
// calls mark(lock) for each. Under the graph's mutex, which every mark
// holds: a MaybeNode meanwhile reads each word before or after its store,
// and both have the bits of every lock the graph holds.
template <typename EachLock>
void RebuildFilter(EachLock each_lock) {
  static uint64_t fresh[kFilterWords];  // Under the graph's mutex.
  std::fill(std::begin(fresh), std::end(fresh), 0);
  size_t bits = 0;
  each_lock([&bits](const void* lock) {
    const size_t bit = FilterBit(lock);
    const uint64_t mask = uint64_t{1} << (bit % 64);
    if ((fresh[bit / 64] & mask) == 0) ++bits;
    fresh[bit / 64] |= mask;
  });
  for (size_t w = 0; w < kFilterWords; ++w)
    g_maybe_node[w].store(fresh[w], std::memory_order_relaxed);
  g_maybe_bits.store(bits, std::memory_order_relaxed);
}

inline bool MaybeNode(const void* lock) {
  const size_t bit = FilterBit(lock);
  return (g_maybe_node[bit / 64].load(std::memory_order_relaxed) >> (bit % 64)) & 1;
}

}  // namespace lockprof::agent::graph

#endif  // LOCKPROF_AGENT_DEADLOCK_NODE_FILTER_H_
