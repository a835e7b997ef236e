#include "lockprof/agent/deadlock/lock_graph.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/deadlock/deferred_forgets.h"
#include "lockprof/agent/deadlock/graph_store.h"
#include "lockprof/agent/deadlock/node_filter.h"
#include "lockprof/agent/record/lock_lifetime.h"
#include "lockprof/agent/record/record.h"

namespace lockprof::agent {

std::atomic<bool> g_lock_graph_used{false};
std::atomic<uint64_t> g_lock_order_epoch{0};

namespace {

using namespace graph;  // NOLINT: this file's own data.

// Static storage, zeroed: its pages cost memory only once touched, which
// only lock-order checking does. Guarded by g_graph_mu.
Graph g_graph;
// Never destroyed (std::mutex's destructor does nothing): locks are taken
// and destroyed until the very end. Not created on first use either: that
// would allocate.
std::mutex g_graph_mu;
[[maybe_unused]] const bool g_held_across_fork =
    (HoldAcrossFork(&g_graph_mu, ForkRank::kLockGraph), true);

std::atomic<uint64_t> g_dropped{0};
std::atomic<uint64_t> g_inversions{0};

void ForgetLocked(Graph& g, const void* lock);
void ForgetAllLocked(Graph& g);

// The graph, under g_graph_mu: initialised on first use, the locks whose
// forgetting was deferred forgotten (deferred_forgets.h).
Graph& Ready() {
  Graph& g = g_graph;
  if (!g.ready) {
    std::fill(std::begin(g.buckets), std::end(g.buckets), kNone);
    g.free_nodes = kNone;
    g.free_edges = kNone;
    g.ready = true;
  }
  TakeDeferredForgets([&g](const void* lock) { ForgetLocked(g, lock); },
                      [&g] { ForgetAllLocked(g); });
  return g;
}

int& Bucket(Graph& g, const void* lock) {
  return g
      .buckets[(reinterpret_cast<uintptr_t>(lock) * 0x9E3779B97F4A7C15ull) >> (64 - kBucketBits)];
}

int FindNode(Graph& g, const void* lock) {
  for (int i = Bucket(g, lock); i != kNone; i = g.nodes[i].next) {
    if (g.nodes[i].lock == lock) return i;
  }
  return kNone;
}

// A free item of `items` (a node or an edge): the head of its free list,
// linked through `link`, else the next never used; kNone (counted as a
// dropped edge) if there is none.
template <typename Item, size_t N>
int Claim(Item (&items)[N], int Item::*link, int* free_list, int* used) {
  if (const int i = *free_list; i != kNone) {
    *free_list = items[i].*link;
    return i;
  }
  if (*used < int(N)) return (*used)++;
  g_dropped.fetch_add(1, std::memory_order_relaxed);
  return kNone;
}

// The node of `lock`, added if new; kNone (counted) if the graph is full.
int EnsureNode(Graph& g, const void* lock, const char* name) {
  if (int i = FindNode(g, lock); i != kNone) return i;
  const int i = Claim(g.nodes, &Node::next, &g.free_nodes, &g.nodes_used);
  if (i == kNone) return kNone;
  int& head = Bucket(g, lock);
  g.nodes[i] = Node{lock, LockDisplayName(name), kNone, kNone, kNone, head, {0, 0}};
  head = i;
  ++g.live_nodes;
  MarkMaybeNode(lock);
  if (FilterCrowded()) {
    RebuildFilter([&g](auto mark) {
      for (int n = 0; n < g.nodes_used; ++n) {
        if (g.nodes[n].lock != nullptr) mark(g.nodes[n].lock);
      }
      for (int w = 0; w < g.self_wait_count; ++w) mark(g.self_waits[w].lock);
    });
  }
  return i;
}

// Copies `name` into `out`, cut at a UTF-8 character boundary and marked
// "..." if it does not fit.
void CopyName(const char* name, char (&out)[kCycleNameBytes]) {
  if (const size_t n = KeptNameBytes(name, sizeof out); name[n] == '\0') {
    std::memcpy(out, name, n + 1);
    return;
  }
  const size_t keep = KeptNameBytes(name, sizeof out - 3);
  std::memcpy(out, name, keep);
  std::memcpy(out + keep, "...", 4);
}

void Describe(const Graph& g, const Edge& e, CycleEdge* out) {
  CopyName(g.nodes[e.from].name, out->from);
  CopyName(g.nodes[e.to].name, out->to);
  out->tid = e.tid;
  out->depth = e.depth;
  std::copy_n(e.pcs, e.depth, out->pcs);
}

// Empties g.index of the tombstones its removed edges left.
void Reindex(Graph& g) {
  g.index.Clear();
  for (int e = 0; e < g.edges_used; ++e) {
    const Edge& edge = g.edges[e];
    if (edge.from == kNone) continue;
    g.index.Insert(g.nodes[edge.from].lock, g.nodes[edge.to].lock, e, edge.kinds);
  }
}

void SetAcquisition(Edge& edge, int64_t tid, const StackTrace& stack) {
  edge.tid = tid;
  edge.depth = std::min(stack.depth, kMaxStackDepth);
  std::copy_n(stack.pcs, edge.depth, edge.pcs);
}

// Writes the cycle of edge `e` and the `back` edges of g.route.
void WriteCycle(const Graph& g, int e, int back, Cycle* cycle) {
  cycle->total_edges = 1 + back;
  cycle->num_edges = std::min(cycle->total_edges, kMaxCycleEdges);
  Describe(g, g.edges[e], &cycle->edges[0]);
  for (int i = 1; i < cycle->num_edges; ++i) {
    Describe(g, g.edges[g.route[i - 1]], &cycle->edges[i]);
  }
}

// Edge `e` is taken in `kind` too. Reports a cycle through it that this
// makes possible, where it was not: one whose first edge holds shared only,
// if the edge now may wait for its target exclusively; one whose last edge
// waits shared only, if it now may hold its source exclusively (any other
// was possible before, and reported when it became so).
bool AddKind(Graph& g, int e, int kind, int64_t tid, const StackTrace& stack, Cycle* cycle) {
  Edge& edge = g.edges[e];
  const unsigned was = Exclusive(edge.kinds);
  edge.kinds |= 1u << kind;
  const unsigned is = Exclusive(edge.kinds);
  int back = 0;
  if ((is & ~was & kExclusiveWait) != 0) {
    back = CycleBack(g, edge.from, edge.to, edge.kinds, CycleEnds::kFirstHoldsShared);
  }
  if (back == 0 && (is & ~was & kExclusiveHold) != 0) {
    back = CycleBack(g, edge.from, edge.to, edge.kinds, CycleEnds::kLastWaitsShared);
  }
  if (back == 0) return false;
  // The acquisition whose kind made the cycle possible.
  SetAcquisition(edge, tid, stack);
  WriteCycle(g, e, back, cycle);
  return true;
}

// Adds from -> to (both nodes exist), taken in `kind`; writes the cycle it
// closes, if any.
bool AddEdge(Graph& g, int from, int to, int kind, int64_t tid, const StackTrace& stack,
             Cycle* cycle) {
  const void* from_lock = g.nodes[from].lock;
  const void* to_lock = g.nodes[to].lock;
  auto is_edge = [&](int e) { return g.edges[e].from == from && g.edges[e].to == to; };
  if (const int e = g.index.Find(from_lock, to_lock, is_edge); e != kNone) {
    g.index.AddKind(from_lock, to_lock, is_edge, kind);
    return AddKind(g, e, kind, tid, stack, cycle);
  }
  if (g.index.Crowded()) Reindex(g);
  const int index = Claim(g.edges, &Edge::next_out, &g.free_edges, &g.edges_used);
  if (index == kNone) return false;
  // Searched before the edge is in: a path to -> ... -> from plus the new
  // edge is the cycle.
  const unsigned kinds = 1u << kind;
  const int back = CycleBack(g, from, to, kinds);
  Edge& edge = g.edges[index];
  Node& source = g.nodes[from];
  Node& target = g.nodes[to];
  edge.from = from;
  edge.to = to;
  edge.kinds = kinds;
  edge.next_out = kNone;
  edge.prev_out = source.out_last;
  if (source.out_last != kNone) {
    g.edges[source.out_last].next_out = index;
  } else {
    source.out = index;
  }
  source.out_last = index;
  edge.prev_in = kNone;
  edge.next_in = target.in;
  if (target.in != kNone) g.edges[target.in].prev_in = index;
  target.in = index;
  SetAcquisition(edge, tid, stack);
  g.index.Insert(from_lock, to_lock, index, kinds);
  ++g.live_edges;
  if (back == 0) return false;
  WriteCycle(g, index, back, cycle);
  return true;
}

// Unlinks edge `e` from both of its nodes' lists and frees it.
void RemoveEdge(Graph& g, int e) {
  Edge& edge = g.edges[e];
  Node& source = g.nodes[edge.from];
  Node& target = g.nodes[edge.to];
  g.index.Erase(source.lock, target.lock, e);
  (edge.prev_out != kNone ? g.edges[edge.prev_out].next_out : source.out) = edge.next_out;
  (edge.next_out != kNone ? g.edges[edge.next_out].prev_out : source.out_last) = edge.prev_out;
  (edge.prev_in != kNone ? g.edges[edge.prev_in].next_in : target.in) = edge.next_in;
  if (edge.next_in != kNone) g.edges[edge.next_in].prev_in = edge.prev_in;
  edge.from = edge.to = kNone;
  edge.next_out = g.free_edges;
  g.free_edges = e;
  --g.live_edges;
}

// Counts `cycle`, just found, and keeps it if there is room (under
// g_graph_mu).
void Found(Graph& g, const Cycle& cycle, int* kept) {
  g_inversions.fetch_add(1, std::memory_order_relaxed);
  const int found = g.found_count.load(std::memory_order_relaxed);
  if (found < kMaxLockOrderReports) {
    g.found[found] = cycle;
    g.found_count.store(found + 1, std::memory_order_release);
    ++*kept;
  }
}

}  // namespace

int AddLockOrderEdges(const HeldLock* held, int n, const void* to, const char* to_name,
                      const StackTrace& stack, int64_t tid, Cycle* out, int* first_kept,
                      int* kept) {
  // The graph's mutex is lockprof's own.
  RecorderScope recorder;
  std::lock_guard<std::mutex> lock(g_graph_mu);
  Graph& g = Ready();
  *first_kept = g.found_count.load(std::memory_order_relaxed);
  *kept = 0;
  const int target = EnsureNode(g, to, to_name);
  if (target == kNone) return 0;
  int cycles = 0;
  for (int i = 0; i < n; ++i) {
    const int source = EnsureNode(g, held[i].lock, held[i].name);
    if (source == kNone || !AddEdge(g, source, target, held[i].kind, tid, stack, &out[cycles])) {
      continue;
    }
    Found(g, out[cycles], kept);
    ++cycles;
  }
  return cycles;
}

int AddSelfWait(const void* lock, const char* name, const StackTrace& stack, int64_t tid,
                Cycle* out, int* first_kept, int* kept) {
  RecorderScope recorder;
  CycleEdge& edge = out->edges[0];
  CopyName(LockDisplayName(name), edge.from);
  CopyName(LockDisplayName(name), edge.to);
  edge.tid = tid;
  edge.depth = std::min(stack.depth, kMaxStackDepth);
  std::copy_n(stack.pcs, edge.depth, edge.pcs);
  out->num_edges = out->total_edges = 1;
  std::lock_guard<std::mutex> guard(g_graph_mu);
  Graph& g = Ready();
  *first_kept = g.found_count.load(std::memory_order_relaxed);
  *kept = 0;
  // Once per lock and stack: a lock used as a semaphore waits there again
  // and again; the same lock elsewhere is reported, and so is another lock
  // at its address once the first was destroyed (ForgetLockOrderNode
  // forgets its self-waits). The latest kMaxSelfWaits are kept: beyond,
  // the oldest is forgotten (and reported again if it recurs), so that
  // each of the kept is still reported once.
  uint64_t key = reinterpret_cast<uintptr_t>(lock) * 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < edge.depth; ++i) key = (key ^ edge.pcs[i]) * 0xC2B2AE3D27D4EB4Full;
  const auto end = g.self_waits + g.self_wait_count;
  if (std::any_of(g.self_waits, end, [key](const Graph::SelfWait& w) { return w.key == key; })) {
    return 0;
  }
  if (g.self_wait_count == kMaxSelfWaits) {
    std::move(g.self_waits + 1, end, g.self_waits);
    --g.self_wait_count;
  }
  g.self_waits[g.self_wait_count++] = {lock, key};
  MarkMaybeNode(lock);  // Its destruction must forget it.
  Found(g, *out, kept);
  return 1;
}

bool LockOrderEdgeKnown(const void* from, const void* to, int kind) {
  return g_graph.index.Contains(from, to, kind);
}

const Cycle& FoundCycle(int i) { return g_graph.found[i]; }

void ForgetLock(const void* lock) { ForgetLockOrderNode(lock); }

void ForgetLocksIn(const void* begin, const void* end) { ForgetLockOrderNodesIn(begin, end); }

namespace {

// Forgets the self-waits reported for the locks that `gone` says are
// destroyed.
template <typename Gone>
void ForgetSelfWaits(Graph& g, Gone gone) {
  const auto end = g.self_waits + g.self_wait_count;
  g.self_wait_count = int(
      std::remove_if(g.self_waits, end, [&](const Graph::SelfWait& w) { return gone(w.lock); }) -
      g.self_waits);
}

// Takes node i, and its edges, out of the graph.
void RemoveNode(Graph& g, int i) {
  while (g.nodes[i].out != kNone) RemoveEdge(g, g.nodes[i].out);
  while (g.nodes[i].in != kNone) RemoveEdge(g, g.nodes[i].in);
  int* link = &Bucket(g, g.nodes[i].lock);
  while (*link != i) link = &g.nodes[*link].next;
  *link = g.nodes[i].next;
  g.nodes[i].lock = nullptr;
  g.nodes[i].next = g.free_nodes;
  g.free_nodes = i;
  --g.live_nodes;
}

// Takes `lock`, its edges and its self-waits out of the graph.
void ForgetLocked(Graph& g, const void* lock) {
  ForgetSelfWaits(g, [lock](const void* l) { return l == lock; });
  const int i = FindNode(g, lock);
  if (i == kNone) return;
  RemoveNode(g, i);
  g_lock_order_epoch.fetch_add(1, std::memory_order_release);
}

// Takes the locks in [begin, end), their edges and self-waits out.
void ForgetInLocked(Graph& g, const void* begin, const void* end) {
  ForgetSelfWaits(g, [begin, end](const void* l) {
    return !std::less<const void*>()(l, begin) && std::less<const void*>()(l, end);
  });
  bool removed = false;
  for (int i = 0; i < g.nodes_used; ++i) {
    const void* lock = g.nodes[i].lock;
    if (lock == nullptr || std::less<const void*>()(lock, begin) ||
        !std::less<const void*>()(lock, end)) {
      continue;
    }
    RemoveNode(g, i);
    removed = true;
  }
  if (removed) g_lock_order_epoch.fetch_add(1, std::memory_order_release);
}

void ForgetAllLocked(Graph& g) {
  ForgetInLocked(g, nullptr, reinterpret_cast<const void*>(UINTPTR_MAX));
}

}  // namespace

void ForgetLockOrderNode(const void* lock) {
  if (!MaybeNode(lock)) return;
  // Not waited for where this thread may hold it, or a fork() does
  // (deferred_forgets.h).
  if (InRecorder() || ForkInProgress()) {
    DeferForget(lock);
    return;
  }
  RecorderScope recorder;
  std::lock_guard<std::mutex> guard(g_graph_mu);
  ForgetLocked(Ready(), lock);
}

void ForgetLockOrderNodesIn(const void* begin, const void* end) {
  if (!g_lock_graph_used.load(std::memory_order_relaxed)) return;
  RecorderScope recorder;
  std::lock_guard<std::mutex> guard(g_graph_mu);
  ForgetInLocked(Ready(), begin, end);
}

uint64_t LockOrderDropped() { return g_dropped.load(std::memory_order_relaxed); }

int FoundCycles() { return g_graph.found_count.load(std::memory_order_acquire); }

uint64_t LockOrderInversionCount() { return g_inversions.load(std::memory_order_relaxed); }

}  // namespace lockprof::agent
