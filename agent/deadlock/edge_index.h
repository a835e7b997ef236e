// The lock-order graph's edges by their locks' addresses, so that an edge
// the graph has already costs neither the graph's mutex, nor a walk over
// its source's edges (a registry lock under which thousands of entry locks
// are taken has thousands), nor a stack capture for an edge that is not
// new. Each thread's cache (ThreadLocks) holds the last 256 edges it took;
// this holds every edge of the graph, for all threads.
//
// An edge is taken in up to four kinds (ThreadLocks::EdgeKind: whether its
// source was held shared, whether its target was waited for shared), which
// matter to the search for cycles: a thread that meets a kind the graph
// has not seen hands it to the graph.
//
// Open addressing, linear probing, over 64-bit words: a hash of an edge's
// two addresses (the key), its low four bits replaced by the kinds seen.
// Written under the graph's mutex only; Contains() reads it without any
// lock, Find() under the mutex. A key never moves while it is in: Erase()
// leaves a tombstone, and when tombstones and keys fill three quarters of
// the slots the writer clears the table and inserts the live edges again;
// a reader during that rebuild may find an edge missing, and then takes
// the mutex as for a new edge (never the other way round: a key is in the
// table only while its edge is in the graph, or was just erased).
//
// Contains() compares keys alone: two edges whose keys are equal (a chance
// of about 2^-60 per pair of edges) look alike to it, and the second would
// be taken for the first and not added, a missed edge, never a false
// report. Find() also checks the edge the slot names.
#ifndef LOCKPROF_AGENT_DEADLOCK_EDGE_INDEX_H_
#define LOCKPROF_AGENT_DEADLOCK_EDGE_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace lockprof::agent {

// `kMaxEdges` is the most edges the graph holds; zero-initialised storage
// is an empty index (the graph is a static, zeroed object).
template <int kMaxEdges>
class EdgeIndex {
 public:
  // Whether the edge from -> to is in the graph, taken in `kind`.
  // Lock-free; may say no for an edge added or erased meanwhile, or during
  // a rebuild.
  bool Contains(const void* from, const void* to, int kind) const {
    const uint64_t key = Key(from, to);
    for (size_t i = Home(key), n = 0; n < kSlots; i = (i + 1) % kSlots, ++n) {
      const uint64_t w = words_[i].load(std::memory_order_relaxed);
      if ((w & ~kKinds) == key) return (w >> kind & 1) != 0;
      if (w == kEmpty) return false;
    }
    return false;
  }

  // The edge from -> to, or -1: the first edge whose slot has its key and
  // for which is_edge(edge) holds. Under the graph's mutex.
  template <typename IsEdge>
  int Find(const void* from, const void* to, IsEdge is_edge) const {
    const int i = SlotOf(from, to, is_edge);
    return i < 0 ? -1 : edge_[i];
  }

  // Adds `edge`, from -> to, taken in the kinds of mask `kinds` (bit k:
  // kind k), which Find() did not find, to a table not Crowded(). Under
  // the mutex.
  void Insert(const void* from, const void* to, int edge, unsigned kinds) {
    const uint64_t key = Key(from, to);
    size_t i = Home(key);
    for (uint64_t w; (w = words_[i].load(std::memory_order_relaxed)) != kEmpty && w != kErased;) {
      i = (i + 1) % kSlots;
    }
    if (words_[i].load(std::memory_order_relaxed) == kEmpty) ++used_;
    edge_[i] = edge;
    words_[i].store(key | (kinds & kKinds), std::memory_order_relaxed);
  }

  // Marks `edge`, from -> to (found by Find() with `is_edge`), taken in
  // `kind` too. Under the mutex.
  template <typename IsEdge>
  void AddKind(const void* from, const void* to, IsEdge is_edge, int kind) {
    if (const int i = SlotOf(from, to, is_edge); i >= 0) {
      words_[i].fetch_or(uint64_t{1} << kind, std::memory_order_relaxed);
    }
  }

  // Takes `edge`, from -> to, out. Under the mutex.
  void Erase(const void* from, const void* to, int edge) {
    const int i = SlotOf(from, to, [edge](int e) { return e == edge; });
    if (i >= 0) words_[i].store(kErased, std::memory_order_relaxed);
  }

  // Whether the next Insert() must wait for a rebuild (Clear(), then an
  // Insert() of every edge): three quarters of the slots are used, a
  // quarter at least by tombstones, and probes grow long.
  bool Crowded() const { return used_ >= kSlots / 4 * 3; }

  // Empties the table. Under the mutex.
  void Clear() {
    for (std::atomic<uint64_t>& w : words_) w.store(kEmpty, std::memory_order_relaxed);
    used_ = 0;
  }

 private:
  // Twice the edges: a full graph fills half the slots, so that probes
  // stay short, and tombstones have room before a rebuild.
  static constexpr size_t kSlots = 2 * size_t(kMaxEdges);
  static constexpr uint64_t kEmpty = 0;
  static constexpr uint64_t kErased = 1;
  // A word's kind bits; the rest, the key, is never 0, so a word in use is
  // neither kEmpty nor kErased.
  static constexpr uint64_t kKinds = 0xf;

  static uint64_t Key(const void* from, const void* to) {
    uint64_t h = uint64_t(reinterpret_cast<uintptr_t>(from)) * 0x9E3779B97F4A7C15ull;
    h ^= (h >> 29) ^ uint64_t(reinterpret_cast<uintptr_t>(to)) * 0xC2B2AE3D27D4EB4Full;
    h = (h ^ (h >> 32)) * 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    h &= ~kKinds;
    return h != 0 ? h : kKinds + 1;
  }
  static size_t Home(uint64_t key) { return size_t(key >> 20) % kSlots; }

  // The slot of the edge from -> to for which is_edge(edge) holds, or -1.
  template <typename IsEdge>
  int SlotOf(const void* from, const void* to, IsEdge is_edge) const {
    const uint64_t key = Key(from, to);
    for (size_t i = Home(key), n = 0; n < kSlots; i = (i + 1) % kSlots, ++n) {
      const uint64_t w = words_[i].load(std::memory_order_relaxed);
      if (w == kEmpty) return -1;
      if ((w & ~kKinds) == key && w != kErased && is_edge(edge_[i])) return int(i);
    }
    return -1;
  }

  std::atomic<uint64_t> words_[kSlots];
  int edge_[kSlots];  // The edge of each key's slot.
  size_t used_;       // Slots not empty: keys and tombstones.
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_DEADLOCK_EDGE_INDEX_H_
