// One thread's record of the locks it holds and waits for, as lock tracking
// publishes it (lock_tracking.h), and the two operations every tracked
// acquisition and release make on it, inline: a push and a pop.
//
// The owner writes under a sequence counter (odd while it writes); readers
// copy and retry. Every published field is an atomic, so that a reader
// racing with the owner reads torn values at worst (and retries), never
// undefined behaviour. On x86-64 the owner's relaxed and release stores are
// plain moves: a push or a pop is a handful of stores to lines that only
// the owner writes.
#ifndef LOCKPROF_AGENT_RECORD_THREAD_LOCKS_H_
#define LOCKPROF_AGENT_RECORD_THREAD_LOCKS_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/deadlock/lock_graph.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof::agent {

// Frames kept per held lock and per waiting thread.
inline constexpr int kHeldStackDepth = 16;

// One held lock, or the lock a thread waits for.
struct HeldEntry {
  // `meta`: the LockMode in bits 0-7; kTried if taken by a try_lock;
  // kDetailed if `since` and the stack were recorded (else they are stale
  // and read as absent); kUnordered if the lock is outside the lock-order
  // graph (no edges start from it or end at it); the stack's depth in bits
  // 16-23; kSharedHold for a read hold of a readers-first lock (which
  // another reader does not wait for: EventTags::readers_first).
  static constexpr uint32_t kTried = 1u << 8;
  static constexpr uint32_t kDetailed = 1u << 9;
  static constexpr uint32_t kUnordered = 1u << 10;
  static constexpr int kSharedHoldBit = 11;
  static constexpr uint32_t kSharedHold = 1u << kSharedHoldBit;

  std::atomic<const void*> lock{nullptr};
  std::atomic<const char*> name{nullptr};
  std::atomic<uint32_t> meta{0};
  std::atomic<int64_t> since{0};
  std::atomic<uintptr_t> pcs[kHeldStackDepth] = {};

  static uint32_t Meta(const EventTags& tags, bool tried, bool ordered) {
    return uint32_t(tags.mode) | (tried ? kTried : 0) | (ordered ? 0 : kUnordered) |
           (SharedWait(tags) ? kSharedHold : 0);
  }
  // Whether an acquisition with `tags` waits for writers only.
  static bool SharedWait(const EventTags& tags) {
    return tags.readers_first && tags.mode == LockMode::kRead;
  }
  // The recorded stack's depth: 0 unless kDetailed.
  static int StackDepth(uint32_t meta) {
    return (meta & kDetailed) != 0 ? std::min(int(meta >> 16 & 0xff), kHeldStackDepth) : 0;
  }
  // Without since and stack: three stores.
  void Store(const void* l, const EventTags& tags, bool tried, bool ordered) {
    lock.store(l, std::memory_order_relaxed);
    name.store(tags.lock, std::memory_order_relaxed);
    meta.store(Meta(tags, tried, ordered), std::memory_order_relaxed);
  }
  void StoreDetailed(const void* l, const EventTags& tags, bool tried, bool ordered, int64_t s,
                     const uintptr_t* stack, int stack_depth) {
    const int d = std::clamp(stack_depth, 0, kHeldStackDepth);
    for (int i = 0; i < d; ++i) pcs[i].store(stack[i], std::memory_order_relaxed);
    since.store(s, std::memory_order_relaxed);
    lock.store(l, std::memory_order_relaxed);
    name.store(tags.lock, std::memory_order_relaxed);
    meta.store(Meta(tags, tried, ordered) | kDetailed | uint32_t(d) << 16,
               std::memory_order_relaxed);
  }
};

// The edges a thread has already handed to the graph, direct-mapped.
inline constexpr int kEdgeCacheSize = 256;

struct ThreadLocks {
  std::atomic<ThreadLocks*> next{nullptr};
  std::atomic<bool> in_use{true};
  std::atomic<uint32_t> generation{0};  // ForkGeneration() of the owner.
  std::atomic<int64_t> tid{0};
  std::atomic<uint32_t> seq{0};  // Odd while the owner writes.
  std::atomic<int32_t> held{0};
  std::atomic<bool> waiting{false};
  HeldEntry entries[kMaxHeldLocks];
  HeldEntry wait;
  // Owner-only from here on.
  uint64_t cache_epoch = 0;
  // `to` carries the edge's kind in its two low bits (EdgeKind); the slot
  // is the addresses' (CacheSlot(from, lock)), whatever the kind.
  struct CachedEdge {
    const void* from;
    const void* to;
  } cache[kEdgeCacheSize] = {};

  // An edge's kind: bit 0, `from` held shared (HeldEntry::kSharedHold);
  // bit 1, `to` waited for shared (HeldEntry::SharedWait). Both 0 for every
  // lock but a readers-first one, so that an edge of two mutexes is cached
  // by its addresses alone. Locks are aligned to 4 bytes at least: the two
  // low bits of `to` are free to carry it.
  static int EdgeKind(uint32_t from_meta, bool shared_wait) {
    return int(from_meta >> HeldEntry::kSharedHoldBit & 1) | (shared_wait ? 2 : 0);
  }
  static const void* KindedTo(const void* to, int kind) {
    return reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(to) | uintptr_t(kind));
  }

  // A write: `const uint32_t w = BeginWrite(); ...; EndWrite(w);`. The
  // owner alone writes `seq`, so the value it read at the start is still
  // the value at the end: EndWrite need not load it again (after the
  // fence, the compiler would).
  uint32_t BeginWrite() {
    const uint32_t odd = seq.load(std::memory_order_relaxed) + 1;
    seq.store(odd, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    return odd;
  }
  void EndWrite(uint32_t odd) { seq.store(odd + 1, std::memory_order_release); }
  // Holds and waits nothing, as readers see it.
  void Clear() {
    const uint32_t w = BeginWrite();
    held.store(0, std::memory_order_relaxed);
    waiting.store(false, std::memory_order_relaxed);
    EndWrite(w);
  }
  // Both addresses mixed into every bit before the slot is taken from the
  // top: locks next to each other (an array of them, taken under one lock)
  // must land in different slots. (Taking bits 20 and up of from*K ^ to put
  // every lock within a MiB of another in its slot: each edge from one lock
  // to a hundred neighbours missed the cache and took the graph's mutexes.)
  static size_t CacheSlot(const void* from, const void* to) {
    uint64_t h = uint64_t(reinterpret_cast<uintptr_t>(from)) * 0x9E3779B97F4A7C15ull ^
                 uint64_t(reinterpret_cast<uintptr_t>(to)) * 0xC2B2AE3D27D4EB4Full;
    h = (h ^ (h >> 31)) * 0x94D049BB133111EBull;
    return size_t(h >> 32) % kEdgeCacheSize;
  }
  // The edges from the `held` locks to `lock` were all handed to the graph
  // before (they are in the cache): there is nothing to add. Inline on every
  // tracked acquisition, for edges of kind 0 only (every edge between
  // mutexes and lockprof's locks); one with a read hold or wait of a
  // readers-first lock says no, and is looked up by kind out of line
  // (lock_tracking.cc), so that the common case reads no kind.
  bool EdgesCached(int held, const void* lock, bool shared_wait) const {
    if (shared_wait || cache_epoch != LockOrderEpoch()) return false;
    for (int i = 0; i < held; ++i) {
      const void* from = entries[i].lock.load(std::memory_order_relaxed);
      const uint32_t meta = entries[i].meta.load(std::memory_order_relaxed);
      // Held already (a read lock taken twice): no edge.
      if (from == lock) continue;
      if ((meta & (HeldEntry::kUnordered | HeldEntry::kSharedHold)) != 0) {
        if ((meta & HeldEntry::kUnordered) != 0) continue;  // Outside the graph.
        return false;
      }
      const CachedEdge& slot = cache[CacheSlot(from, lock)];
      if (slot.from != from || slot.to != lock) return false;
    }
    return true;
  }
  // A record of the parent's other threads, in a fork()ed child (the
  // forking thread's own is renewed there: lock_tracking.cc). Never true of
  // TheRecord(), so the inline paths below do not test it.
  bool Stale() const { return generation.load(std::memory_order_relaxed) != ForkGeneration(); }
};

// This thread's record, nullptr until it first needs one (lock_tracking.cc).
inline ThreadLocks*& TheRecord() {
  // In ThreadState (initial-exec TLS: one %fs-relative load), not a
  // thread_local of its own, which a library built -fPIC would reach
  // through a __tls_get_addr call on every acquisition while tracking.
  return *reinterpret_cast<ThreadLocks**>(&tls_state.lock_record);
}

// The common acquisition, inline: this thread has a record, has no new
// edge to add (it holds nothing yet, or has taken this order before, or
// took the lock by a try, or the lock is outside the graph, or checking is
// off), and no details are wanted. Returns false, recording nothing, when
// the full path is needed.
inline bool PushHeldFast(const void* lock, const EventTags& tags, bool tried, bool ordered,
                         bool add_edges, bool details) {
  ThreadLocks* r = TheRecord();
  if (r == nullptr || tls_state.in_recorder || details) return false;
  const int held = r->held.load(std::memory_order_relaxed);
  if (held >= kMaxHeldLocks || (held > 0 && add_edges && !tried && ordered &&
                                !r->EdgesCached(held, lock, HeldEntry::SharedWait(tags)))) {
    return false;
  }
  const uint32_t w = r->BeginWrite();
  r->entries[held].Store(lock, tags, tried, ordered);
  r->held.store(held + 1, std::memory_order_relaxed);
  r->EndWrite(w);
  return true;
}

// The common release, inline: `lock` is this thread's newest held lock.
// Returns false, changing nothing, when the full path is needed.
inline bool PopHeldFast(const void* lock) {
  ThreadLocks* r = TheRecord();
  if (r == nullptr) return true;  // Records nothing: nothing to forget.
  const int held = r->held.load(std::memory_order_relaxed);
  if (held == 0 || r->entries[held - 1].lock.load(std::memory_order_relaxed) != lock) {
    return false;
  }
  const uint32_t w = r->BeginWrite();
  r->held.store(held - 1, std::memory_order_relaxed);
  r->EndWrite(w);
  return true;
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_THREAD_LOCKS_H_
