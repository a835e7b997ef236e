#include "lockprof/agent/record/lock_tracking.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <optional>

#include "absl/base/attributes.h"
#include "lockprof/agent/base/fault_free_copy.h"
#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/base/quiet_calls.h"
#include "lockprof/agent/deadlock/events.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/exited_holds.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/thread_records.h"

namespace lockprof::agent {

std::atomic<bool> g_track_locks{false};
std::atomic<bool> g_held_details{false};
std::atomic<int64_t> g_stall_threshold_ns{0};

namespace {

std::atomic<ThreadLocks*> g_records{nullptr};

// The cycles one acquisition's new edges close, until their stderr lines
// are written (the hook reads the graph's kept copies: CheckOrder).
// Static, not on the application thread's stack (8 KiB each), so they are
// guarded: g_report_mu serializes the acquisitions that add edges, which
// are rare (each edge is added once). Never destroyed, not allocated (this
// runs inside lock calls, perhaps the application's allocator's).
std::mutex g_report_mu;
Cycle g_new_cycles[kMaxHeldLocks];
[[maybe_unused]] const bool g_report_mu_held_across_fork =
    (HoldAcrossFork(&g_report_mu, ForkRank::kLockOrderReport), true);

// A reader's copy of one entry (inside CopyOf's read of the record: the
// lock is held, or awaited, as the copy starts).
LockView Load(const HeldEntry& e) {
  LockView v;
  v.lock = e.lock.load(std::memory_order_relaxed);
  if (const char* name = e.name.load(std::memory_order_relaxed); name != nullptr) {
    CopyNameFaultFree(name, v.name, sizeof v.name);
  }
  const uint32_t meta = e.meta.load(std::memory_order_relaxed);
  v.mode = LockMode(meta & 0xff);
  v.tried = (meta & HeldEntry::kTried) != 0;
  if ((meta & HeldEntry::kDetailed) != 0) {
    v.since = e.since.load(std::memory_order_relaxed);
    v.depth = HeldEntry::StackDepth(meta);
    for (int i = 0; i < v.depth; ++i) v.pcs[i] = e.pcs[i].load(std::memory_order_relaxed);
  }
  return v;
}

// The owner moves an entry (inside a write).
void Move(const HeldEntry& from, HeldEntry* to) {
  const uint32_t meta = from.meta.load(std::memory_order_relaxed);
  const int depth = HeldEntry::StackDepth(meta);
  for (int i = 0; i < depth; ++i) {
    to->pcs[i].store(from.pcs[i].load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  to->since.store(from.since.load(std::memory_order_relaxed), std::memory_order_relaxed);
  to->lock.store(from.lock.load(std::memory_order_relaxed), std::memory_order_relaxed);
  to->name.store(from.name.load(std::memory_order_relaxed), std::memory_order_relaxed);
  to->meta.store(meta, std::memory_order_relaxed);
}

// Set once this thread's record was freed at its exit: a later destructor
// that locks is not tracked (a new record would never be freed).
thread_local bool t_exited = false;

// A consistent copy of `p`: the owner never waits for us, so we retry a few
// times and, if it keeps writing, take the next try as it is.
ThreadLocksView CopyOf(const ThreadLocks& p) {
  ThreadLocksView v;
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint32_t before = p.seq.load(std::memory_order_acquire);
    if (before % 2 != 0) continue;
    v.tid = p.tid.load(std::memory_order_relaxed);
    v.held.clear();
    const int held = std::clamp(p.held.load(std::memory_order_relaxed), 0, kMaxHeldLocks);
    for (int i = 0; i < held; ++i) v.held.push_back(Load(p.entries[i]));
    v.waiting = p.waiting.load(std::memory_order_relaxed);
    if (v.waiting) v.wait = Load(p.wait);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (p.seq.load(std::memory_order_relaxed) == before) break;
  }
  return v;
}

// Frees this thread's record when it exits (thread_exit_key.h); the locks
// it still holds are kept apart (exited_holds.h).
void ReleaseRecord(void* p) {
  auto* record = static_cast<ThreadLocks*>(p);
  if (record->held.load(std::memory_order_relaxed) > 0) {
    RecorderScope recorder;  // Its allocations and mutex are lockprof's own.
    ThreadLocksView view = CopyOf(*record);
    view.waiting = false;
    RememberExitedHolds(std::move(view));
  }
  record->Clear();
  record->in_use.store(false, std::memory_order_release);
  TheRecord() = nullptr;
  t_exited = true;
}

// Made when the library loads (thread_exit_key.h says why).
[[maybe_unused]] const bool g_record_key_made = ThreadExitKey<ReleaseRecord>().has_value();

ThreadLocks* SelfSlow();

// This thread's record, allocated (or reused) on first use; nullptr once
// the thread is exiting.
inline ThreadLocks* Self() {
  ThreadLocks* r = TheRecord();
  if (__builtin_expect(r != nullptr, 1)) return r;
  return SelfSlow();
}

ABSL_ATTRIBUTE_NOINLINE ThreadLocks* SelfSlow() {
  RecorderScope recorder;  // The allocator's locks are not the program's.
  ThreadLocks* r = ClaimThreadRecord<ThreadLocks, ReleaseRecord>(&g_records, t_exited);
  if (r == nullptr) return nullptr;  // Exiting, or out of keys or memory: untracked.
  TheRecord() = r;
  // A parent's thread may have been writing it when the process forked: its
  // count stays odd in the child, where readers would then skip this
  // thread for good (and take its writes for stable).
  const uint32_t seq = r->seq.load(std::memory_order_relaxed);
  if (seq & 1) r->seq.store(seq + 1, std::memory_order_release);
  r->Clear();
  r->cache_epoch = ~uint64_t{0};
  r->tid.store(int64_t(syscall(SYS_gettid)), std::memory_order_relaxed);
  r->generation.store(ForkGeneration(), std::memory_order_relaxed);
  return r;
}

// In a fork()ed child (fork.h), before any of its code runs: the forking
// thread's record becomes the child's, still holding what that thread
// holds (the child's thread holds it too). Renewed here, not when the
// thread next uses it: until then the record would look like one of the
// parent's other threads' (Stale), and a new thread of the child could
// claim it, and then share it with the forking thread, whose TheRecord()
// still points to it. The edge cache stays valid: the graph is inherited.
void RenewRecordInChild() {
  ThreadLocks* r = TheRecord();
  if (r == nullptr) return;
  r->tid.store(int64_t(syscall(SYS_gettid)), std::memory_order_relaxed);
  r->generation.store(ForkGeneration(), std::memory_order_relaxed);
}

[[maybe_unused]] const bool g_fork_handler = (OnForkChild(&RenewRecordInChild), true);

// Runs `find(out, &first_kept, &kept)`, which writes the cycles it finds to
// out[] and returns how many, and reports them.
template <typename Find>
void ReportNewCycles(Find find) {
  // The report mutex and the graph's are lockprof's own.
  RecorderScope recorder;
  int first_kept = 0, kept = 0;
  {
    std::lock_guard<std::mutex> serialized(g_report_mu);
    const int cycles = find(g_new_cycles, &first_kept, &kept);
    if (cycles > 0) WriteInversionLines(g_new_cycles, cycles);
    // A cycle found past the kept reports' limit runs no hook, but abort
    // mode aborts on it all the same, here, where it cannot change.
    if (cycles > kept) AbortIfAsked(g_new_cycles[0]);
  }
  // The hook runs with no lock of lockprof's held (it may take the
  // application's, whose holders may be adding edges meanwhile), on the
  // cycles kept: those no other acquisition overwrites.
  for (int i = 0; i < kept; ++i) NotifyInversion(FoundCycle(first_kept + i));
}

// Adds the edges from this thread's held locks to `lock` that it has not
// handed to the graph yet; reports the cycles they close. `stack` is this
// acquisition's, captured here if it is empty and an edge needs it.
void CheckOrder(ThreadLocks* r, const void* lock, const EventTags& tags, const void* entry_frame,
                StackTrace* stack) {
  const uint64_t epoch = LockOrderEpoch();
  if (r->cache_epoch != epoch) {
    std::fill(std::begin(r->cache), std::end(r->cache), ThreadLocks::CachedEdge{nullptr, nullptr});
    r->cache_epoch = epoch;
  }
  HeldLock fresh[kMaxHeldLocks];
  int n = 0;
  const int held = r->held.load(std::memory_order_relaxed);
  // A lock this thread holds already (a read lock taken again) gets no edge
  // into it from any lock: with A taken in between, A -> R would close a
  // cycle R -> A -> R of this thread's own, which no other thread can
  // complete.
  for (int i = 0; i < held; ++i) {
    if (r->entries[i].lock.load(std::memory_order_relaxed) == lock) return;
  }
  const bool shared_wait = HeldEntry::SharedWait(tags);
  for (int i = 0; i < held; ++i) {
    const void* from = r->entries[i].lock.load(std::memory_order_relaxed);
    const uint32_t meta = r->entries[i].meta.load(std::memory_order_relaxed);
    // Outside the graph: no edge.
    if ((meta & HeldEntry::kUnordered) != 0) continue;
    const int kind = ThreadLocks::EdgeKind(meta, shared_wait);
    const void* to = ThreadLocks::KindedTo(lock, kind);
    auto& slot = r->cache[ThreadLocks::CacheSlot(from, lock)];
    if (slot.from == from && slot.to == to) continue;
    slot = {from, to};
    // Taken before by another thread, or by this one and since evicted.
    if (LockOrderEdgeKnown(from, lock, kind)) continue;
    fresh[n++] = {from, r->entries[i].name.load(std::memory_order_relaxed), kind};
  }
  if (n == 0) return;
  if (stack->depth == 0) CaptureStack(entry_frame, stack);
  ReportNewCycles([&](Cycle* out, int* first_kept, int* kept) {
    return AddLockOrderEdges(fresh, n, lock, tags.lock, *stack,
                             r->tid.load(std::memory_order_relaxed), out, first_kept, kept);
  });
}

// NoteAcquired's work; with `record` false only its lock-order check, for an
// acquisition that cannot be recorded, as one beyond kMaxHeldLocks.
bool NoteAcquisition(const void* lock, const EventTags& tags, bool tried, bool ordered,
                     const void* entry_frame, bool record) {
  if (InRecorder()) return false;
  ThreadLocks* r = Self();
  if (r == nullptr) return false;
  const int held = r->held.load(std::memory_order_relaxed);
  StackTrace stack;
  stack.depth = 0;
  // Edges start from the locks held already: none for the first.
  if (held > 0 && !tried && ordered && LockOrderCheckingOn() &&
      !r->EdgesCached(held, lock, HeldEntry::SharedWait(tags))) {
    CheckOrder(r, lock, tags, entry_frame, &stack);
  }
  if (!record || held == kMaxHeldLocks) return false;  // Not recorded.
  // Since when and where: only for the held-locks page's holders and the
  // stall watchdog (a clock read and a stack walk: most of the cost). The
  // walk takes no CFI fallback: it runs on every acquisition.
  const bool details = HeldDetailsOn();
  const int64_t since = details ? MonotonicNanos() : 0;
  if (details && stack.depth == 0) CaptureStackWithoutFallback(entry_frame, &stack);
  const uint32_t w = r->BeginWrite();
  if (details) {
    r->entries[held].StoreDetailed(lock, tags, tried, ordered, since, stack.pcs, stack.depth);
  } else {
    r->entries[held].Store(lock, tags, tried, ordered);
  }
  r->held.store(held + 1, std::memory_order_relaxed);
  r->EndWrite(w);
  return true;
}

}  // namespace

// The cases PushHeldFast leaves: edges to add or look up, details to record,
// the record to allocate, or inside the recorder.
bool NoteAcquired(const void* lock, const EventTags& tags, bool tried, bool ordered,
                  const void* entry_frame) {
  return NoteAcquisition(lock, tags, tried, ordered, entry_frame, /*record=*/true);
}

// The cases PopHeldFast leaves: a lock released out of order, or none
// recorded.
void NoteReleased(const void* lock) {
  ThreadLocks* r = TheRecord();
  if (r == nullptr) return;
  const int held = r->held.load(std::memory_order_relaxed);
  for (int i = held - 1; i >= 0; --i) {
    if (r->entries[i].lock.load(std::memory_order_relaxed) != lock) continue;
    const uint32_t w = r->BeginWrite();  // The newer ones move down.
    for (int j = i; j + 1 < held; ++j) Move(r->entries[j + 1], &r->entries[j]);
    r->held.store(held - 1, std::memory_order_relaxed);
    r->EndWrite(w);
    return;
  }
}

void CheckOrderUnrecorded(const void* lock, const EventTags& tags, bool tried,
                          const void* entry_frame) {
  NoteAcquisition(lock, tags, tried, /*ordered=*/true, entry_frame, /*record=*/false);
}

namespace {

// A wait of thread `tid` for a lock it holds, which never ends: reported as
// a cycle of one lock. `stack` is the wait's, captured here if empty.
void ReportSelfWait(const void* lock, const EventTags& tags, const void* entry_frame,
                    StackTrace& stack, int64_t tid) {
  if (stack.depth == 0) CaptureStack(entry_frame, &stack);
  ReportNewCycles([&](Cycle* out, int* first_kept, int* kept) {
    return AddSelfWait(lock, tags.lock, stack, tid, out, first_kept, kept);
  });
}

}  // namespace

void ReportWaitForOwnLock(const void* lock, const EventTags& tags, const void* entry_frame,
                          const StackTrace* stack) {
  if (!LockOrderCheckingOn() || InRecorder()) return;
  StackTrace copy;
  copy.depth = stack->depth;
  std::copy_n(stack->pcs, stack->depth, copy.pcs);
  const ThreadLocks* r = Self();
  ReportSelfWait(
      lock, tags, entry_frame, copy,
      r != nullptr ? r->tid.load(std::memory_order_relaxed) : int64_t(syscall(SYS_gettid)));
}

void CheckOrderBeforeWait(const void* lock, const EventTags& tags, const void* entry_frame,
                          const StackTrace* stack, bool self_wait_hangs) {
  if (!LockOrderCheckingOn() || InRecorder()) return;
  ThreadLocks* r = Self();
  if (r == nullptr) return;
  const int held = r->held.load(std::memory_order_relaxed);
  if (held == 0) return;  // No edge to add, and not its own lock.
  StackTrace copy;
  copy.depth = stack->depth;
  std::copy_n(stack->pcs, stack->depth, copy.pcs);
  if (self_wait_hangs && std::any_of(r->entries, r->entries + held, [lock](const HeldEntry& e) {
        return e.lock.load(std::memory_order_relaxed) == lock;
      })) {
    ReportSelfWait(lock, tags, entry_frame, copy, r->tid.load(std::memory_order_relaxed));
    return;
  }
  CheckOrder(r, lock, tags, entry_frame, &copy);
}

bool NoteWaitBegin(const void* lock, const EventTags& tags, int64_t start,
                   const StackTrace& stack) {
  if (InRecorder()) return false;
  ThreadLocks* r = Self();
  if (r == nullptr) return false;
  const uint32_t w = r->BeginWrite();
  r->wait.StoreDetailed(lock, tags, /*tried=*/false, /*ordered=*/true, start, stack.pcs,
                        stack.depth);
  r->waiting.store(true, std::memory_order_relaxed);
  r->EndWrite(w);
  return true;
}

void NoteWaitEnd() {
  ThreadLocks* r = TheRecord();
  if (r == nullptr || !r->waiting.load(std::memory_order_relaxed)) return;
  const uint32_t w = r->BeginWrite();
  r->waiting.store(false, std::memory_order_relaxed);
  r->EndWrite(w);
}

std::vector<ThreadLocksView> SnapshotThreadLocks() {
  std::vector<ThreadLocksView> out;
  for (ThreadLocks* p = g_records.load(std::memory_order_acquire); p != nullptr;
       p = p->next.load(std::memory_order_acquire)) {
    if (!p->in_use.load(std::memory_order_acquire) || p->Stale()) continue;
    ThreadLocksView v = CopyOf(*p);
    if (!v.held.empty() || v.waiting) out.push_back(std::move(v));
  }
  AppendExitedHolds(&out);
  return out;
}

namespace {

void ReportStallNow(const void* lock, const EventTags& tags, int64_t start) {
  const int64_t now = MonotonicNanos();
  ThreadLocks* self = TheRecord();
  LockStall stall{
      LockDisplayName(tags.lock),
      self != nullptr ? self->tid.load(std::memory_order_relaxed) : int64_t(syscall(SYS_gettid)),
      std::chrono::nanoseconds(now - start),
      0,
      std::chrono::nanoseconds(0),
      nullptr,
      0,
      false};
  // The holder: the thread whose record holds `lock` (the first, for a lock
  // held shared by several).
  LockView holder;
  for (const ThreadLocksView& t : SnapshotThreadLocks()) {
    for (const LockView& h : t.held) {
      if (h.lock != lock || stall.holder_thread_id != 0) continue;
      holder = h;
      stall.holder_thread_id = t.tid;
      // since is 0 for a hold recorded without details (ReportStalledWait).
      stall.held = std::chrono::nanoseconds(h.since != 0 ? now - h.since : 0);
      stall.holder_stack = holder.pcs;
      stall.holder_stack_depth = holder.depth;
      stall.holder_exited = holder.exited;
    }
  }
  ReportStalledWait(stall, holder.exited_name);
}

}  // namespace

void ReportStall(const void* lock, const EventTags& tags, int64_t start) {
  RecorderScope recorder;
  // The report (a thread's name read from /proc, a line on stderr) and the
  // hook run inside a lock call, which is no cancellation point.
  NoCancelNoErrno quiet;
  // Nor may the report's allocations or the hook throw out of it: the
  // waiter is registered with the lock until its wait ends.
  RunDroppingExceptions([&] { ReportStallNow(lock, tags, start); });
}

}  // namespace lockprof::agent
