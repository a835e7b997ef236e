// The process-wide acquired-before graph of lock-order checking.
//
// Nodes are locks (by address), an edge A -> B means some thread acquired
// B while holding A. Adding an edge first searches for a path back from B
// to A: if there is one, the new edge closes a cycle, a potential
// deadlock, returned as an Inversion for the caller to report once it has
// let go of the graph. Only new edges reach the graph (each thread caches
// the edges it has seen: lock_tracking.cc), under one internal mutex that no
// application code can hold.
//
// Bounded: kMaxLockOrderNodes locks and kMaxLockOrderEdges edges; an edge
// that would exceed either is dropped (and counted). ForgetLock removes a
// lock and its edges and bumps LockOrderEpoch(), which empties every thread's cache.
#ifndef LOCKPROF_AGENT_DEADLOCK_LOCK_GRAPH_H_
#define LOCKPROF_AGENT_DEADLOCK_LOCK_GRAPH_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "lockprof/agent/record/stack_trace.h"

namespace lockprof::agent {

struct InversionEdge {
  std::string from;  // Lock names, "(unnamed)" for none.
  std::string to;
  int64_t tid = 0;
  std::vector<uintptr_t> stack;
};

// A cycle, the edge just taken first.
struct Inversion {
  std::vector<InversionEdge> edges;
};

struct HeldLock {
  const void* lock;
  const char* name;
};

// Adds the edges held[i] -> `to`, taken by thread `tid` at `stack`.
// Returns the cycles they close.
std::vector<Inversion> AddLockOrderEdges(const HeldLock* held, int n, const void* to,
                                         const char* to_name, const StackTrace& stack, int64_t tid);

// Removes `lock` and its edges, if it is in the graph.
void ForgetLockOrderNode(const void* lock);

// Bumped whenever a node leaves the graph.
extern std::atomic<uint64_t> g_lock_order_epoch;
inline uint64_t LockOrderEpoch() { return g_lock_order_epoch.load(std::memory_order_acquire); }

// Edges that were not added for lack of room.
uint64_t LockOrderDropped();

// Cycles found so far (the first kMaxLockOrderReports) and how many in all.
std::vector<Inversion> LockOrderInversionsFound();
uint64_t LockOrderInversionCount();

// The name shown for a lock without one.
inline const char* LockDisplayName(const char* name) {
  return name != nullptr ? name : "(unnamed)";
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_DEADLOCK_LOCK_GRAPH_H_
