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
// Lock-free and bounded: kMaxDeferredForgets at once. Past that, the next
// holder forgets every lock: a lock left out would keep its node, and a
// later lock at its address would inherit its edges, so that an order taken
// once would read as an inversion (an abort in abort mode). Forgetting
// every lock loses orders seen so far, which are learnt again; it never
// reports one that was not taken.
#ifndef LOCKPROF_AGENT_DEADLOCK_DEFERRED_FORGETS_H_
#define LOCKPROF_AGENT_DEADLOCK_DEFERRED_FORGETS_H_

#include <atomic>

namespace lockprof::agent {

inline constexpr int kMaxDeferredForgets = 64;
inline std::atomic<const void*> g_deferred_forgets[kMaxDeferredForgets];
inline std::atomic<bool> g_deferred_forgets_queued{false};
// A lock found the queue full: every lock is to be forgotten.
inline std::atomic<bool> g_deferred_forgets_overflowed{false};

// Queues `lock`, or marks the queue overflowed if it is full.
inline void DeferForget(const void* lock) {
  bool queued = false;
  for (std::atomic<const void*>& slot : g_deferred_forgets) {
    const void* empty = nullptr;
    if (slot.compare_exchange_strong(empty, lock, std::memory_order_acq_rel)) {
      queued = true;
      break;
    }
  }
  if (!queued) g_deferred_forgets_overflowed.store(true, std::memory_order_release);
  // After the slot or the mark: a taker that finds the flag cleared has not
  // yet looked at them, or will see the flag set again.
  g_deferred_forgets_queued.store(true, std::memory_order_release);
}

// Calls forget(lock) for each queued lock, or forget_all() once if the
// queue overflowed, and empties the queue. Called by the graph mutex's
// holder; one load while nothing is queued.
template <typename Forget, typename ForgetAll>
void TakeDeferredForgets(Forget forget, ForgetAll forget_all) {
  if (!g_deferred_forgets_queued.load(std::memory_order_acquire)) return;
  g_deferred_forgets_queued.store(false, std::memory_order_relaxed);
  const bool overflowed = g_deferred_forgets_overflowed.exchange(false, std::memory_order_acq_rel);
  for (std::atomic<const void*>& slot : g_deferred_forgets) {
    const void* lock = slot.exchange(nullptr, std::memory_order_acq_rel);
    if (lock != nullptr && !overflowed) forget(lock);
  }
  if (overflowed) forget_all();
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_DEADLOCK_DEFERRED_FORGETS_H_
