// The process-wide acquired-before graph of lock-order checking.
//
// Nodes are locks (by address), an edge A -> B means some thread acquired
// B while holding A. Adding an edge first searches for a path back from B
// to A: if there is one, the new edge closes a cycle, a potential
// deadlock, copied out as a Cycle for the caller to report once it has
// let go of the graph. Only new edges reach the graph (each thread caches
// the edges it has seen: lock_tracking.cc), under one internal mutex that no
// application code can hold.
//
// Read holds: a cycle is a potential deadlock only if each of its threads
// can wait for the next, and on a readers-first lock (EventTags) a reader
// waits for a writer only. A path A -> B -> C where B was waited for
// shared (A -> B) and held shared (B -> C) on such a lock is no chain: two
// threads taking two of glibc's default rwlocks for reading in opposite
// orders cannot deadlock. Edges remember the kinds they were taken in
// (shared or not, at either end); the search treats each kind apart from
// the others at each end (an edge taken once shared-shared and once
// exclusive-exclusive also chains as shared-exclusive), which may report
// a cycle that needs both, and a walk that passes a lock twice (held
// exclusively on one pass, which no cycle can) once a loop through that
// lock was found (cycle_search.cc); it never misses one.
// An edge taken in a new kind is searched for the cycles that kind makes
// possible. On every other lock
// (lockprof::SharedMutex, the writer-preferring rwlock kind, mutexes) a
// waiting writer makes readers wait too: every hold and wait counts, and
// the search is the plain one.
//
// Allocation-free: edges are added inside the application's lock calls,
// which may be its allocator's (a malloc that takes pthread mutexes, under
// the interposer), where a call to malloc would wait for a mutex the
// thread already holds. The graph lives in fixed arrays (static storage,
// whose pages the kernel maps only once they are used), and the cycles it
// found are copied into fixed records, names included, which readers copy
// without taking the graph's mutex.
//
// Bounded: kMaxLockOrderNodes locks and kMaxLockOrderEdges edges; an edge
// that would exceed either is dropped (and counted). ForgetLockOrderNode
// removes a lock and its edges and bumps LockOrderEpoch(), which empties
// every thread's cache.
#ifndef LOCKPROF_AGENT_DEADLOCK_LOCK_GRAPH_H_
#define LOCKPROF_AGENT_DEADLOCK_LOCK_GRAPH_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "lockprof/agent/lock_order.h"
#include "lockprof/agent/record/stack_trace.h"

namespace lockprof::agent {

// A cycle's first kMaxCycleEdges edges are kept; a longer one says how
// many it has.
inline constexpr int kMaxCycleEdges = 16;
// A lock name's bytes kept in a cycle, the terminating NUL included; a
// longer name is cut at a character boundary and ends in "...".
inline constexpr int kCycleNameBytes = 128;

// One edge of a cycle, copied out of the graph: the locks may be destroyed
// (and their names with them) before it is read.
struct CycleEdge {
  char from[kCycleNameBytes];  // Lock names, "(unnamed)" for none.
  char to[kCycleNameBytes];
  int64_t tid;  // The thread that took the edge first.
  int depth;
  uintptr_t pcs[kMaxStackDepth];  // Its stack at that acquisition.
};

// A cycle, the edge just taken first.
struct Cycle {
  int num_edges;    // Kept, in edges[].
  int total_edges;  // In the cycle.
  CycleEdge edges[kMaxCycleEdges];
};

struct HeldLock {
  const void* lock;
  const char* name;
  int kind;  // Of the edge from it to the lock taken (ThreadLocks::EdgeKind).
};

// Adds the edges held[i] -> `to`, each of held[i].kind, taken by thread
// `tid` at `stack`, and
// writes the cycles they close to out[0], out[1], ... (at most n). Returns
// how many. The first *kept of them are also kept with the cycles found so
// far (the first kMaxLockOrderReports), from FoundCycle(*first_kept) on.
int AddLockOrderEdges(const HeldLock* held, int n, const void* to, const char* to_name,
                      const StackTrace& stack, int64_t tid, Cycle* out, int* first_kept, int* kept);

// Whether the graph has the edge from -> to taken in `kind`
// (ThreadLocks::EdgeKind), which a thread then need not add (nor capture a
// stack for). Lock-free: an edge added or removed meanwhile may be seen
// either way; one that is in the graph throughout is seen.
bool LockOrderEdgeKnown(const void* from, const void* to, int kind);

// A thread (`tid`, at `stack`) is about to sleep for `lock`, named `name`,
// which it holds: a cycle of one lock, written to *out, counted and kept
// like AddLockOrderEdges' (*kept is 0 or 1); returns 1, or 0 for a wait
// for that lock at that stack reported before (one that ended: a pthread
// mutex another thread unlocked, as glibc allows) and not forgotten since
// (ForgetLockOrderNode; beyond the latest 64 reported, the oldest). The
// graph's edges are not changed.
int AddSelfWait(const void* lock, const char* name, const StackTrace& stack, int64_t tid,
                Cycle* out, int* first_kept, int* kept);

// The i-th cycle found, for i below FoundCycles(): immutable once kept,
// read without the graph's lock.
const Cycle& FoundCycle(int i);

// Removes `lock` and its edges, if it is in the graph, and forgets the
// self-deadlocks reported for it (AddSelfWait): a lock destroyed, whose
// address another lock may take.
void ForgetLockOrderNode(const void* lock);

// Removes every lock in [begin, end) and their edges: the data of an
// object that was unloaded, whose addresses the next object loaded there
// reuses for locks of its own.
void ForgetLockOrderNodesIn(const void* begin, const void* end);

// Bumped whenever a node leaves the graph.
extern std::atomic<uint64_t> g_lock_order_epoch;
inline uint64_t LockOrderEpoch() { return g_lock_order_epoch.load(std::memory_order_acquire); }

// Edges that were not added for lack of room.
uint64_t LockOrderDropped();

// How many cycles are kept (FoundCycle's range), and how many were found.
int FoundCycles();
uint64_t LockOrderInversionCount();

// The name shown for a lock without one.
inline const char* LockDisplayName(const char* name) {
  return name != nullptr ? name : "(unnamed)";
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_DEADLOCK_LOCK_GRAPH_H_
