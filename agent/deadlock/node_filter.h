// Which addresses were ever nodes of the lock-order graph (or locks with a
// self-deadlock report), so that destroying a lock that never was costs no
// mutex: a Bloom filter with one hash, never cleared (a lock forgotten
// stays "maybe", which costs its address's next destruction one look under
// the graph's mutex, not a wrong answer).
#ifndef LOCKPROF_AGENT_DEADLOCK_NODE_FILTER_H_
#define LOCKPROF_AGENT_DEADLOCK_NODE_FILTER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "lockprof/agent/record/lock_lifetime.h"

namespace lockprof::agent::graph {

inline constexpr size_t kFilterWords = 1024;  // 8 KiB, zeroed static storage.
inline std::atomic<uint64_t> g_maybe_node[kFilterWords];

inline size_t FilterBit(const void* lock) {
  return size_t((reinterpret_cast<uintptr_t>(lock) * 0x9E3779B97F4A7C15ull) >> 48) %
         (kFilterWords * 64);
}

// Marks `lock` as one ForgetLockOrderNode must look for, and the graph as
// used (lock_lifetime.h).
inline void MarkMaybeNode(const void* lock) {
  const size_t bit = FilterBit(lock);
  g_maybe_node[bit / 64].fetch_or(uint64_t{1} << (bit % 64), std::memory_order_relaxed);
  g_lock_graph_used.store(true, std::memory_order_relaxed);
}

inline bool MaybeNode(const void* lock) {
  const size_t bit = FilterBit(lock);
  return (g_maybe_node[bit / 64].load(std::memory_order_relaxed) >> (bit % 64)) & 1;
}

}  // namespace lockprof::agent::graph

#endif  // LOCKPROF_AGENT_DEADLOCK_NODE_FILTER_H_
