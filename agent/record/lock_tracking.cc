#include "lockprof/agent/record/lock_tracking.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "absl/base/attributes.h"
#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/deadlock/events.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/record.h"

namespace lockprof::agent {

std::atomic<bool> g_track_locks{false};
std::atomic<bool> g_held_details{false};
std::atomic<int64_t> g_stall_threshold_ns{0};

namespace {

// One lock as a record publishes it: every field an atomic, so that a
// reader racing with the owner reads torn values at worst (and retries),
// never undefined behaviour.
struct Entry {
  std::atomic<const void*> lock{nullptr};
  std::atomic<const char*> name{nullptr};
  std::atomic<uint8_t> mode{0};
  std::atomic<bool> tried{false};
  std::atomic<int64_t> since{0};
  std::atomic<int32_t> depth{0};
  std::atomic<uintptr_t> pcs[kHeldStackDepth] = {};

  void Store(const void* l, const EventTags& tags, bool t, int64_t s, const StackTrace& stack) {
    lock.store(l, std::memory_order_relaxed);
    name.store(tags.lock, std::memory_order_relaxed);
    mode.store(uint8_t(tags.mode), std::memory_order_relaxed);
    tried.store(t, std::memory_order_relaxed);
    since.store(s, std::memory_order_relaxed);
    const int d = std::min(stack.depth, kHeldStackDepth);
    depth.store(d, std::memory_order_relaxed);
    for (int i = 0; i < d; ++i) pcs[i].store(stack.pcs[i], std::memory_order_relaxed);
  }
  void CopyFrom(const Entry& e) {
    StackTrace stack;
    stack.depth = e.depth.load(std::memory_order_relaxed);
    for (int i = 0; i < stack.depth; ++i) stack.pcs[i] = e.pcs[i].load(std::memory_order_relaxed);
    Store(
        e.lock.load(std::memory_order_relaxed),
        {e.name.load(std::memory_order_relaxed), LockMode(e.mode.load(std::memory_order_relaxed))},
        e.tried.load(std::memory_order_relaxed), e.since.load(std::memory_order_relaxed), stack);
  }
  LockView Load() const {
    LockView v;
    v.lock = lock.load(std::memory_order_relaxed);
    v.name = name.load(std::memory_order_relaxed);
    v.mode = LockMode(mode.load(std::memory_order_relaxed));
    v.tried = tried.load(std::memory_order_relaxed);
    v.since = since.load(std::memory_order_relaxed);
    v.depth = std::clamp(depth.load(std::memory_order_relaxed), 0, kHeldStackDepth);
    for (int i = 0; i < v.depth; ++i) v.pcs[i] = pcs[i].load(std::memory_order_relaxed);
    return v;
  }
};

// The edges a thread has already handed to the graph, direct-mapped.
constexpr int kEdgeCacheSize = 256;

struct ThreadLocks {
  std::atomic<ThreadLocks*> next{nullptr};
  std::atomic<bool> in_use{true};
  std::atomic<uint32_t> generation{0};  // ForkGeneration() of the owner.
  std::atomic<int64_t> tid{0};
  std::atomic<uint32_t> seq{0};  // Odd while the owner writes.
  std::atomic<int32_t> held{0};
  std::atomic<bool> waiting{false};
  Entry entries[kMaxHeldLocks];
  Entry wait;
  // Owner-only from here on.
  uint64_t cache_epoch = 0;
  struct CachedEdge {
    const void* from;
    const void* to;
  } cache[kEdgeCacheSize] = {};

  void BeginWrite() {
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  void EndWrite() { seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
  // Holds and waits nothing, as readers see it.
  void Clear() {
    BeginWrite();
    held.store(0, std::memory_order_relaxed);
    waiting.store(false, std::memory_order_relaxed);
    EndWrite();
  }
};

std::atomic<ThreadLocks*> g_records{nullptr};

// Frees this thread's record when it exits.
struct Releaser {
  ThreadLocks* record = nullptr;
  ~Releaser();
};

// In ThreadState (initial-exec TLS: one %fs-relative load), not a
// thread_local of its own, which a library built -fPIC reaches through a
// __tls_get_addr call on every acquisition while tracking.
inline ThreadLocks*& TheRecord() {
  return *reinterpret_cast<ThreadLocks**>(&tls_state.lock_record);
}
thread_local Releaser t_releaser;
// Set once this thread's TLS destructors have freed its record: a later
// destructor that locks is not tracked (a new record would never be freed).
thread_local bool t_exited = false;

Releaser::~Releaser() {
  if (record == nullptr) return;
  record->Clear();
  record->in_use.store(false, std::memory_order_release);
  TheRecord() = nullptr;
  record = nullptr;
  t_exited = true;
}

bool Stale(const ThreadLocks* r) {
  return r->generation.load(std::memory_order_relaxed) != ForkGeneration();
}

ThreadLocks* SelfSlow();

// This thread's record, allocated (or reused) on first use; nullptr once
// the thread is exiting.
inline ThreadLocks* Self() {
  ThreadLocks* r = TheRecord();
  if (__builtin_expect(r != nullptr && !Stale(r), 1)) return r;
  return SelfSlow();
}

ABSL_ATTRIBUTE_NOINLINE ThreadLocks* SelfSlow() {
  ThreadLocks* r = TheRecord();
  if (r == nullptr) {
    if (t_exited) return nullptr;
    RecorderScope recorder;  // The allocator's locks are not the program's.
    for (ThreadLocks* p = g_records.load(std::memory_order_acquire); p != nullptr;
         p = p->next.load(std::memory_order_acquire)) {
      bool free = false;
      // A record of a thread of the parent, in a fork()ed child, is free.
      if (Stale(p) && p->in_use.load(std::memory_order_acquire)) {
        p->in_use.store(false, std::memory_order_relaxed);
      }
      if (p->in_use.compare_exchange_strong(free, true, std::memory_order_acquire)) {
        r = p;
        break;
      }
    }
    if (r == nullptr) {
      r = new ThreadLocks;
      ThreadLocks* head = g_records.load(std::memory_order_relaxed);
      do {
        r->next.store(head, std::memory_order_relaxed);
      } while (!g_records.compare_exchange_weak(head, r, std::memory_order_release,
                                                std::memory_order_relaxed));
    }
    t_releaser.record = r;
    TheRecord() = r;
  }
  // A new owner, or the thread that fork()ed, now in the child.
  r->Clear();
  r->cache_epoch = ~uint64_t{0};
  r->tid.store(int64_t(syscall(SYS_gettid)), std::memory_order_relaxed);
  r->generation.store(ForkGeneration(), std::memory_order_relaxed);
  return r;
}

size_t CacheSlot(const void* from, const void* to) {
  const auto h =
      reinterpret_cast<uintptr_t>(from) * 0x9E3779B97F4A7C15ull ^ reinterpret_cast<uintptr_t>(to);
  return (h >> 20) % kEdgeCacheSize;
}

// Adds the edges from this thread's held locks to `lock` that it has not
// handed to the graph yet; reports the cycles they close. `stack` is this
// acquisition's, captured here if it is empty and an edge needs it.
void CheckOrder(ThreadLocks* r, const void* lock, const EventTags& tags, const void* entry_frame,
                StackTrace* stack) {
  if (r->held.load(std::memory_order_relaxed) == 0) return;  // No edge to add.
  const uint64_t epoch = LockOrderEpoch();
  if (r->cache_epoch != epoch) {
    std::fill(std::begin(r->cache), std::end(r->cache), ThreadLocks::CachedEdge{nullptr, nullptr});
    r->cache_epoch = epoch;
  }
  HeldLock fresh[kMaxHeldLocks];
  int n = 0;
  const int held = r->held.load(std::memory_order_relaxed);
  for (int i = 0; i < held; ++i) {
    const void* from = r->entries[i].lock.load(std::memory_order_relaxed);
    if (from == lock) continue;  // Held already (a read lock taken twice): no edge.
    auto& slot = r->cache[CacheSlot(from, lock)];
    if (slot.from == from && slot.to == lock) continue;
    slot = {from, lock};
    fresh[n++] = {from, r->entries[i].name.load(std::memory_order_relaxed)};
  }
  if (n == 0) return;
  if (stack->depth == 0) CaptureStack(entry_frame, stack);
  const std::vector<Inversion> cycles =
      AddLockOrderEdges(fresh, n, lock, tags.lock, *stack, r->tid.load(std::memory_order_relaxed));
  if (!cycles.empty()) ReportInversions(cycles);
}

}  // namespace

bool NoteAcquired(const void* lock, const EventTags& tags, bool tried, const void* entry_frame) {
  if (InRecorder()) return false;
  ThreadLocks* r = Self();
  if (r == nullptr) return false;
  StackTrace stack;
  stack.depth = 0;
  if (!tried && LockOrderCheckingOn()) CheckOrder(r, lock, tags, entry_frame, &stack);
  const int held = r->held.load(std::memory_order_relaxed);
  if (held == kMaxHeldLocks) return false;  // Not recorded: kMaxHeldLocks.
  // Since when and where: only for the held-locks page's holders and the
  // stall watchdog (a clock read and a stack walk: most of the cost).
  int64_t since = 0;
  if (HeldDetailsOn()) {
    if (stack.depth == 0) CaptureStack(entry_frame, &stack);
    since = MonotonicNanos();
  }
  r->BeginWrite();
  r->entries[held].Store(lock, tags, tried, since, stack);
  r->held.store(held + 1, std::memory_order_relaxed);
  r->EndWrite();
  return true;
}

void NoteReleased(const void* lock) {
  ThreadLocks* r = TheRecord();
  if (r == nullptr || Stale(r)) return;
  const int held = r->held.load(std::memory_order_relaxed);
  // Usually the latest; locks may be released in any order.
  for (int i = held - 1; i >= 0; --i) {
    if (r->entries[i].lock.load(std::memory_order_relaxed) != lock) continue;
    r->BeginWrite();
    for (int j = i; j + 1 < held; ++j) r->entries[j].CopyFrom(r->entries[j + 1]);
    r->held.store(held - 1, std::memory_order_relaxed);
    r->EndWrite();
    return;
  }
}

void CheckOrderBeforeWait(const void* lock, const EventTags& tags, const void* entry_frame,
                          const StackTrace* stack) {
  if (!LockOrderCheckingOn() || InRecorder()) return;
  ThreadLocks* r = Self();
  if (r == nullptr) return;
  StackTrace copy;
  copy.depth = stack->depth;
  std::copy_n(stack->pcs, stack->depth, copy.pcs);
  CheckOrder(r, lock, tags, entry_frame, &copy);
}

void NoteWaitBegin(const void* lock, const EventTags& tags, int64_t start,
                   const StackTrace& stack) {
  if (InRecorder()) return;
  ThreadLocks* r = Self();
  if (r == nullptr) return;
  r->BeginWrite();
  r->wait.Store(lock, tags, false, start, stack);
  r->waiting.store(true, std::memory_order_relaxed);
  r->EndWrite();
}

void NoteWaitEnd() {
  ThreadLocks* r = TheRecord();
  if (r == nullptr || !r->waiting.load(std::memory_order_relaxed)) return;
  r->BeginWrite();
  r->waiting.store(false, std::memory_order_relaxed);
  r->EndWrite();
}

std::vector<ThreadLocksView> SnapshotThreadLocks() {
  std::vector<ThreadLocksView> out;
  for (ThreadLocks* p = g_records.load(std::memory_order_acquire); p != nullptr;
       p = p->next.load(std::memory_order_acquire)) {
    if (!p->in_use.load(std::memory_order_acquire) || Stale(p)) continue;
    // A consistent copy: the owner never waits for us, so we retry a few
    // times and, if it keeps writing, take the next try as it is.
    ThreadLocksView v;
    for (int attempt = 0; attempt < 100; ++attempt) {
      const uint32_t before = p->seq.load(std::memory_order_acquire);
      if (before % 2 != 0) continue;
      v.tid = p->tid.load(std::memory_order_relaxed);
      v.held.clear();
      const int held = std::clamp(p->held.load(std::memory_order_relaxed), 0, kMaxHeldLocks);
      for (int i = 0; i < held; ++i) v.held.push_back(p->entries[i].Load());
      v.waiting = p->waiting.load(std::memory_order_relaxed);
      if (v.waiting) v.wait = p->wait.Load();
      std::atomic_thread_fence(std::memory_order_acquire);
      if (p->seq.load(std::memory_order_relaxed) == before) break;
    }
    if (!v.held.empty() || v.waiting) out.push_back(std::move(v));
  }
  return out;
}

void ReportStall(const void* lock, const EventTags& tags, int64_t start) {
  RecorderScope recorder;
  const int64_t now = MonotonicNanos();
  ThreadLocks* self = TheRecord();
  LockStall stall{
      LockDisplayName(tags.lock),
      self != nullptr ? self->tid.load(std::memory_order_relaxed) : int64_t(syscall(SYS_gettid)),
      std::chrono::nanoseconds(now - start),
      0,
      std::chrono::nanoseconds(0),
      nullptr,
      0};
  // The holder: the thread whose record holds `lock` (the first, for a lock
  // held shared by several).
  LockView holder;
  for (const ThreadLocksView& t : SnapshotThreadLocks()) {
    for (const LockView& h : t.held) {
      if (h.lock != lock || stall.holder_thread_id != 0) continue;
      holder = h;
      stall.holder_thread_id = t.tid;
      stall.held = std::chrono::nanoseconds(now - h.since);
      stall.holder_stack = holder.pcs;
      stall.holder_stack_depth = holder.depth;
    }
  }
  ReportStalledWait(stall);
}

}  // namespace lockprof::agent
