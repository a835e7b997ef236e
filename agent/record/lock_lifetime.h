// What a lockprof lock tells the agent when it is destroyed (and the
// interposer's pthread_mutex_destroy and _init, of the mutex they are given).
//
// Lock-order checking keeps a graph keyed by lock addresses; a destroyed
// lock must leave it, or memory reused for another lock would inherit its
// edges, and the self-deadlocks reported for it, which would hide the new
// lock's. The check is one relaxed load until the graph has ever had a node
// or a self-deadlock.
#ifndef LOCKPROF_AGENT_RECORD_LOCK_LIFETIME_H_
#define LOCKPROF_AGENT_RECORD_LOCK_LIFETIME_H_

#include <atomic>

#include "lockprof/agent/base/export.h"

namespace lockprof::agent {

// Set when the lock-order graph gets its first node or self-deadlock report;
// never cleared.
LOCKPROF_EXPORT extern std::atomic<bool> g_lock_graph_used;

// Removes `lock` and its edges from the graph, if it is there, and forgets
// the self-deadlocks reported for it.
LOCKPROF_EXPORT void ForgetLock(const void* lock);

// Removes every lock in [begin, end) and their edges: an object's data,
// unloaded, whose addresses the next object loaded there reuses for locks
// of its own.
LOCKPROF_EXPORT void ForgetLocksIn(const void* begin, const void* end);

inline void OnLockDestroyed(const void* lock) {
  if (__builtin_expect(g_lock_graph_used.load(std::memory_order_relaxed), 0)) ForgetLock(lock);
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_LOCK_LIFETIME_H_
