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
// Depth-first and iterative: the thread's stack may be small.
int FindPath(Graph& g, int from, int target, bool wait_exclusive, bool hold_exclusive) {
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
    if (!step.exclusive_wait && (edge.kinds & kExclusiveHolds) == 0) continue;
    const bool exclusive = (edge.kinds & kExclusiveWaits) != 0;
    const int to = edge.to;
    if (to == target) {
      if (!exclusive && !hold_exclusive) continue;
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

int CycleBack(Graph& g, int from, int to, unsigned kinds) {
  return FindPath(g, to, from, (kinds & kExclusiveWaits) != 0, (kinds & kExclusiveHolds) != 0);
}

}  // namespace lockprof::agent::graph
