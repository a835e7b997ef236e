#include "lockprof/agent/deadlock/lock_graph.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/agent/record/lock_lifetime.h"
#include "lockprof/agent/record/record.h"

namespace lockprof::agent {

std::atomic<bool> g_lock_graph_used{false};
std::atomic<uint64_t> g_lock_order_epoch{0};

namespace {

// A Bloom filter (one hash) of the addresses ever in the graph, so that
// destroying a lock that never was costs no mutex.
constexpr size_t kFilterWords = 1024;
std::atomic<uint64_t> g_maybe_node[kFilterWords];

size_t FilterBit(const void* lock) {
  return size_t((reinterpret_cast<uintptr_t>(lock) * 0x9E3779B97F4A7C15ull) >> 48) %
         (kFilterWords * 64);
}

bool MaybeNode(const void* lock) {
  const size_t bit = FilterBit(lock);
  return (g_maybe_node[bit / 64].load(std::memory_order_relaxed) >> (bit % 64)) & 1;
}

struct Edge {
  const void* from;
  const void* to;
  int64_t tid;
  std::vector<uintptr_t> stack;
};

struct Node {
  std::string name;
  std::vector<int> out;  // Indexes into Graph::edges.
  std::vector<int> in;
  uint64_t visited = 0;  // The search that last reached this node.
};

struct Graph {
  std::unordered_map<const void*, Node> nodes;
  std::vector<Edge> edges;  // A removed edge has from == nullptr.
  std::vector<int> free_edges;
  int live_edges = 0;
  uint64_t search = 0;
  std::vector<Inversion> found;
};

// Never destroyed: locks are taken and destroyed until the very end.
std::mutex& GraphMutex() {
  static auto* mu = [] {
    auto* m = new std::mutex;
    HoldAcrossFork(m, ForkRank::kLockGraph);
    return m;
  }();
  return *mu;
}

Graph& TheGraph() {
  static auto* g = new Graph;
  return *g;
}

std::atomic<uint64_t> g_dropped{0};
std::atomic<uint64_t> g_inversions{0};

// A path from `from` to `target` over the graph's edges, as edge indexes,
// or empty if there is none. Depth-first, iterative: the graph is bounded,
// the thread's stack may be small.
std::vector<int> FindPath(Graph& g, const void* from, const void* target) {
  const uint64_t search = ++g.search;
  struct Step {
    const void* node;
    size_t next_out;
    int via;  // The edge that reached it (-1 for the start).
  };
  std::vector<Step> path{{from, 0, -1}};
  g.nodes[from].visited = search;
  while (!path.empty()) {
    Step& top = path.back();
    Node& n = g.nodes[top.node];
    if (top.next_out == n.out.size()) {
      path.pop_back();
      continue;
    }
    const int e = n.out[top.next_out++];
    const void* to = g.edges[e].to;
    if (to == target) {
      std::vector<int> result;
      for (size_t i = 1; i < path.size(); ++i) result.push_back(path[i].via);
      result.push_back(e);
      return result;
    }
    Node& next = g.nodes[to];
    if (next.visited == search) continue;
    next.visited = search;
    path.push_back({to, 0, e});
  }
  return {};
}

InversionEdge Describe(const Graph& g, const Edge& e) {
  return {g.nodes.at(e.from).name, g.nodes.at(e.to).name, e.tid, e.stack};
}

// Adds from -> to (both nodes exist); returns the cycle it closes, if any.
bool AddEdge(Graph& g, const void* from, const void* to, int64_t tid, const StackTrace& stack,
             Inversion* cycle) {
  for (int e : g.nodes[from].out) {
    if (g.edges[e].to == to) return false;  // Another thread added it first.
  }
  if (g.live_edges >= kMaxLockOrderEdges) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Searched before the edge is in: a path to -> ... -> from plus the new
  // edge is the cycle.
  const std::vector<int> back = FindPath(g, to, from);
  Edge edge{from, to, tid, std::vector<uintptr_t>(stack.pcs, stack.pcs + stack.depth)};
  int index;
  if (!g.free_edges.empty()) {
    index = g.free_edges.back();
    g.free_edges.pop_back();
    g.edges[index] = std::move(edge);
  } else {
    index = int(g.edges.size());
    g.edges.push_back(std::move(edge));
  }
  ++g.live_edges;
  g.nodes[from].out.push_back(index);
  g.nodes[to].in.push_back(index);
  if (back.empty()) return false;
  cycle->edges.push_back(Describe(g, g.edges[index]));
  for (int e : back) cycle->edges.push_back(Describe(g, g.edges[e]));
  return true;
}

bool EnsureNode(Graph& g, const void* lock, const char* name) {
  if (g.nodes.count(lock) != 0) return true;
  if (int(g.nodes.size()) >= kMaxLockOrderNodes) {
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  g.nodes[lock].name = LockDisplayName(name);
  const size_t bit = FilterBit(lock);
  g_maybe_node[bit / 64].fetch_or(uint64_t{1} << (bit % 64), std::memory_order_relaxed);
  g_lock_graph_used.store(true, std::memory_order_relaxed);
  return true;
}

}  // namespace

std::vector<Inversion> AddLockOrderEdges(const HeldLock* held, int n, const void* to,
                                         const char* to_name, const StackTrace& stack,
                                         int64_t tid) {
  // Locks this takes (the graph's, the allocator's) are lockprof's own.
  RecorderScope recorder;
  std::vector<Inversion> cycles;
  std::lock_guard<std::mutex> lock(GraphMutex());
  Graph& g = TheGraph();
  if (!EnsureNode(g, to, to_name)) return cycles;
  for (int i = 0; i < n; ++i) {
    if (!EnsureNode(g, held[i].lock, held[i].name)) continue;
    Inversion cycle;
    if (AddEdge(g, held[i].lock, to, tid, stack, &cycle)) {
      g_inversions.fetch_add(1, std::memory_order_relaxed);
      if (int(g.found.size()) < kMaxLockOrderReports) g.found.push_back(cycle);
      cycles.push_back(std::move(cycle));
    }
  }
  return cycles;
}

void ForgetLock(const void* lock) { ForgetLockOrderNode(lock); }

void ForgetLockOrderNode(const void* lock) {
  if (!MaybeNode(lock)) return;
  RecorderScope recorder;
  std::lock_guard<std::mutex> guard(GraphMutex());
  Graph& g = TheGraph();
  auto it = g.nodes.find(lock);
  if (it == g.nodes.end()) return;
  auto drop = [&g](int e, bool from_side) {
    Edge& edge = g.edges[e];
    // Unlink it from the other end's list.
    std::vector<int>& other = from_side ? g.nodes[edge.to].in : g.nodes[edge.from].out;
    other.erase(std::remove(other.begin(), other.end(), e), other.end());
    edge = Edge{nullptr, nullptr, 0, {}};
    g.free_edges.push_back(e);
    --g.live_edges;
  };
  // Copies: drop() edits the other ends' lists, and a self-edge is in both.
  const std::vector<int> out = it->second.out;
  const std::vector<int> in = it->second.in;
  for (int e : out) drop(e, true);
  for (int e : in) {
    if (g.edges[e].from != nullptr) drop(e, false);
  }
  g.nodes.erase(lock);
  g_lock_order_epoch.fetch_add(1, std::memory_order_release);
}

uint64_t LockOrderDropped() { return g_dropped.load(std::memory_order_relaxed); }

std::vector<Inversion> LockOrderInversionsFound() {
  RecorderScope recorder;
  std::lock_guard<std::mutex> lock(GraphMutex());
  return TheGraph().found;
}

uint64_t LockOrderInversionCount() { return g_inversions.load(std::memory_order_relaxed); }

}  // namespace lockprof::agent
