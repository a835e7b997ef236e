// The cycle search of the lock-order graph (graph_store.h).
#include "lockprof/agent/deadlock/graph_store.h"

namespace lockprof::agent::graph {
namespace {

// A path from node `from` to node `target` over the graph's edges, written
// to g.route, that closes a cycle with an edge target -> from whose waits
// and holds are `wait_exclusive` and `hold_exclusive` (kExclusiveWaits and
// kExclusiveHolds of its kinds); returns its length (0: none). Along a
// cycle each thread waits for the lock the next one holds, which blocks
// unless both are shared on a readers-first lock: two consecutive edges
// chain only if the first may wait exclusively or the second hold so.
// `ends` narrows the path's first and last edges (CycleEnds). Depth-first
// and iterative: the thread's stack may be small.
//
// A node is searched from at most twice, once per way of reaching it (by
// an edge that may wait for it exclusively, or not): the search finds a
// walk whenever a cycle exists, never misses one. A walk it returns may
// pass a lock twice (reached first by a shared wait, then again by an
// exclusive one), and is then no cycle of its own when two of its
// threads would hold that lock at once, one exclusively; but its loop
// back to that lock chains at each of its locks, so the edge of that loop
// added last was reported, with a cycle through it, when it was added (or
// the process aborted). Telling the two apart would take a search for
// simple paths, exponential at worst.
int FindPath(Graph& g, int from, int target, bool wait_exclusive, bool hold_exclusive,
             CycleEnds ends) {
  const uint64_t search = ++g.search;
  int top = 0;
  g.path[0] = {from, g.nodes[from].out, kNone, wait_exclusive};
  g.nodes[from].visited[wait_exclusive] = search;
  while (top >= 0) {
    Step& step = g.path[top];
    if (step.next == kNone) {
      --top;
      continue;
    }
    const int e = step.next;
    const Edge& edge = g.edges[e];
    step.next = edge.next_out;
    const bool holds_exclusive = (edge.kinds & kExclusiveHolds) != 0;
    if (!step.exclusive_wait && !holds_exclusive) continue;
    if (top == 0 && ends == CycleEnds::kFirstHoldsShared && holds_exclusive) continue;
    const bool exclusive = (edge.kinds & kExclusiveWaits) != 0;
    const int to = edge.to;
    if (to == target) {
      if (!exclusive && !hold_exclusive) continue;
      if (ends == CycleEnds::kLastWaitsShared && exclusive) continue;
      int n = 0;
      for (int i = 1; i <= top; ++i) g.route[n++] = g.path[i].via;
      g.route[n++] = e;
      return n;
    }
    // Reached by an exclusive wait before, it was searched from with every
    // edge allowed.
    Node& node = g.nodes[to];
    if (node.visited[1] == search || node.visited[exclusive] == search) continue;
    node.visited[exclusive] = search;
    g.path[++top] = {to, node.out, e, exclusive};
  }
  return 0;
}

}  // namespace

int CycleBack(Graph& g, int from, int to, unsigned kinds, CycleEnds ends) {
  return FindPath(g, to, from, (kinds & kExclusiveWaits) != 0, (kinds & kExclusiveHolds) != 0,
                  ends);
}

}  // namespace lockprof::agent::graph
