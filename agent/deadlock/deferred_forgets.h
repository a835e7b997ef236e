// Locks destroyed where the lock-order graph's mutex could not be waited
// for, queued for its next holder to forget (lock_graph.cc).
//
// Two places: lockprof's own code, which may hold that mutex (an allocation
// inside it that initialises a mutex of the allocator's), and a fork(),
// whose prepare handler holds it until the child's or parent's handler: an
// atfork handler registered before lockprof's runs in between, and
// re-initialising its own mutexes in the child is what such handlers do
// (jemalloc's does). Waiting there hung the child inside fork().
//
// Lock-free and bounded: kMaxDeferredForgets at once; past that a lock is
// not forgotten (its node stays, and a later lock at its address inherits
// its edges), which is what happened to every lock before pthread_mutex_init
// and _destroy told the graph at all.
#ifndef LOCKPROF_AGENT_DEADLOCK_DEFERRED_FORGETS_H_
#define LOCKPROF_AGENT_DEADLOCK_DEFERRED_FORGETS_H_

#include <atomic>

namespace lockprof::agent {

inline constexpr int kMaxDeferredForgets = 64;
inline std::atomic<const void*> g_deferred_forgets[kMaxDeferredForgets];
inline std::atomic<bool> g_deferred_forgets_queued{false};

// Queues `lock`; false if the queue is full.
inline bool DeferForget(const void* lock) {
  for (std::atomic<const void*>& slot : g_deferred_forgets) {
    const void* empty = nullptr;
    if (slot.compare_exchange_strong(empty, lock, std::memory_order_acq_rel)) {
      // After the slot: a taker that finds the flag cleared has not yet
      // looked at this slot, or will see the flag set again.
      g_deferred_forgets_queued.store(true, std::memory_order_release);
      return true;
    }
  }
  return false;
}

// Calls forget(lock) for each queued lock and empties the queue. Called by
// the graph mutex's holder; one load while nothing is queued.
template <typename Forget>
void TakeDeferredForgets(Forget forget) {
  if (!g_deferred_forgets_queued.load(std::memory_order_acquire)) return;
  g_deferred_forgets_queued.store(false, std::memory_order_relaxed);
  for (std::atomic<const void*>& slot : g_deferred_forgets) {
    if (const void* lock = slot.exchange(nullptr, std::memory_order_acq_rel)) forget(lock);
  }
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_DEADLOCK_DEFERRED_FORGETS_H_
