// The lock-order graph's data (lock_graph.h): fixed arrays of nodes and
// edges that refer to each other by index, the edges' index by address,
// and the cycle search's scratch space, all in one static, zeroed object
// guarded by the graph's mutex. Internal to lock_graph.cc and
// cycle_search.cc.
#ifndef LOCKPROF_AGENT_DEADLOCK_GRAPH_STORE_H_
#define LOCKPROF_AGENT_DEADLOCK_GRAPH_STORE_H_

#include <atomic>
#include <cstdint>

#include "lockprof/agent/deadlock/edge_index.h"
#include "lockprof/agent/deadlock/lock_graph.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/agent/record/stack_trace.h"

namespace lockprof::agent::graph {

constexpr int kNone = -1;
constexpr int kMaxSelfWaits = 64;
constexpr int kBucketBits = 13;
constexpr int kBuckets = 1 << kBucketBits;
static_assert(kBuckets >= 2 * kMaxLockOrderNodes, "chains stay short");

// Nodes and edges refer to each other by index. Each node keeps two lists
// of its edges, doubly linked through the edges (out: in insertion order,
// which the search follows; in: any order), so a lock's removal unlinks
// each of its edges in constant time.
struct Node {
  const void* lock;  // nullptr: free.
  const char* name;
  int out, out_last, in;
  int next;  // In its bucket's chain, or in the free list.
  // The search that last reached this node by an edge that waited for it
  // shared ([0]: the holder's next edge must hold its source exclusively)
  // and by one that may not have ([1]: any next edge).
  uint64_t visited[2];
};

// The kinds an edge was taken in (ThreadLocks::EdgeKind), as a mask: bit k
// for kind k. Kind bit 0: the source held shared; bit 1: the target waited
// for shared; each on a readers-first lock, which one reader never waits
// for another on. Kinds 0 and 2 held the source exclusively, 0 and 1 waited
// for the target exclusively.
constexpr unsigned kExclusiveHolds = 0b0101;
constexpr unsigned kExclusiveWaits = 0b0011;

struct Edge {
  int from, to;  // kNone: free.
  int next_out, prev_out, next_in, prev_in;
  unsigned kinds;
  // The acquisition that added it, or the one whose new kind made the
  // cycle reported with it possible.
  int64_t tid;
  int depth;
  uintptr_t pcs[kMaxStackDepth];
};

// A step of the depth-first search: a node, the next of its out-edges to
// follow, and whether the edge that reached it may wait exclusively.
struct Step {
  int node;
  int next;
  int via;  // The edge that reached it.
  bool exclusive_wait;
};

struct Graph {
  bool ready;
  int buckets[kBuckets];
  Node nodes[kMaxLockOrderNodes];
  int nodes_used;  // Never used past this index.
  int free_nodes;
  int live_nodes;
  Edge edges[kMaxLockOrderEdges];
  EdgeIndex<kMaxLockOrderEdges> index;  // The edges by their locks.
  int edges_used;
  int free_edges;
  int live_edges;
  uint64_t search;
  // The search's stack and the path it found, as edges: a node is reached
  // at most twice per search (visited[]).
  Step path[2 * kMaxLockOrderNodes];
  int route[2 * kMaxLockOrderNodes];
  // The self-deadlocks reported (AddSelfWait), the latest kMaxSelfWaits,
  // oldest first: the lock, and a hash of its address and the waiting stack.
  // A lock that is forgotten (destroyed) takes its own with it.
  struct SelfWait {
    const void* lock;
    uint64_t key;
  } self_waits[kMaxSelfWaits];
  int self_wait_count;
  Cycle found[kMaxLockOrderReports];
  std::atomic<int> found_count;  // found[i] is immutable once i < this.
};

// Which cycles a search takes: any, or (for an edge that now waits or
// holds exclusively where it did not) only those whose first edge holds
// shared only (what the edge's new exclusive wait chains with) or whose
// last edge waits shared only (what its new exclusive hold chains with).
enum class CycleEnds { kAny, kFirstHoldsShared, kLastWaitsShared };

// A path to -> ... -> from over g's edges, written to g.route, that closes
// a cycle with an edge from -> to (nodes) taken in `kinds`; returns its
// length (0: none). Under the graph's mutex.
int CycleBack(Graph& g, int from, int to, unsigned kinds, CycleEnds ends = CycleEnds::kAny);

// What the search reads of an edge's kinds: whether one waits exclusively
// (kExclusiveWait), whether one holds so (kExclusiveHold).
constexpr unsigned kExclusiveWait = 1;
constexpr unsigned kExclusiveHold = 2;
inline unsigned Exclusive(unsigned kinds) {
  return ((kinds & kExclusiveWaits) != 0 ? kExclusiveWait : 0) |
         ((kinds & kExclusiveHolds) != 0 ? kExclusiveHold : 0);
}

}  // namespace lockprof::agent::graph

#endif  // LOCKPROF_AGENT_DEADLOCK_GRAPH_STORE_H_
