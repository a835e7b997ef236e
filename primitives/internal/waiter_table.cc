#include "lockprof/primitives/internal/waiter_table.h"

#include <algorithm>

#include "absl/base/attributes.h"
#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/record.h"

namespace lockprof::internal {

WaiterTable::Entry* WaiterTable::Find(Bucket& b, const void* lock) {
  for (Entry& e : b.entries) {
    if (e.lock == lock) return &e;
  }
  return nullptr;
}

bool WaiterTable::Enter(const void* lock, int c, int64_t start, std::atomic<uint64_t>* also_counted,
                        int64_t* counted_from) {
  Bucket& b = BucketOf(lock);
  b.lock.Lock();
  Entry* e = Find(b, lock);
  if (e == nullptr) {
    e = Find(b, nullptr);
    if (e == nullptr) {
      ++b.unregistered;
      b.lock.Unlock();
      dropped_.fetch_add(1, std::memory_order_relaxed);
      agent::CountUnchargedWait();
      return false;
    }
    *e = Entry{lock, also_counted, {}, {}, 0};
  }
  ++e->waiters[c];
  const int64_t from = std::max(start, e->last_settle);
  e->sum[c] += uint64_t(from);
  b.latest_from = std::max(b.latest_from, from);
  if (counted_from != nullptr) *counted_from = from;
  b.lock.Unlock();
  return true;
}

bool WaiterTable::LeaveLocked(Bucket& b, const void* lock, int c, int64_t start, bool registered,
                              int64_t* charged_until) {
  if (!registered) {
    // Only Enter's count in this process's generation: ForgetInChild()
    // zeroed the parent's, whose threads never leave here.
    if (b.unregistered > 0) --b.unregistered;
    return false;
  }
  Entry* e = Find(b, lock);
  if (e == nullptr) return false;  // Forgotten in a fork()ed child.
  --e->waiters[c];
  *charged_until = std::max(start, e->last_settle);
  e->sum[c] -= uint64_t(*charged_until);
  const bool last_of_class = e->waiters[c] == 0;
  bool empty = true;
  for (int k = 0; k < kClasses; ++k) empty &= e->waiters[k] == 0;
  if (empty) e->lock = nullptr;
  return last_of_class && b.unregistered == 0;
}

void WaiterTable::SettleAt(const void* lock, int64_t now, int64_t (&charged)[kClasses]) {
  Bucket& b = BucketOf(lock);
  b.lock.Lock();
  Entry* e = Find(b, lock);
  if (e != nullptr) {
    if (now < 0) now = agent::MonotonicNanos();
    // Never before a waiter's charged-from time: the CPUs' clocks may
    // disagree (a waiter's start read on one, ahead, this time on another),
    // and so may two settles'. A settle before a charged-from time would
    // charge that waiter less than nothing, and its Leave would not take
    // back what the sum holds for it: the difference would go to a later
    // release. Later by at most the skew.
    now = std::max({now, e->last_settle, b.latest_from});
    for (int k = 0; k < kClasses; ++k) {
      const uint64_t all_now = uint64_t(e->waiters[k]) * uint64_t(now);
      charged[k] += int64_t(all_now - e->sum[k]);
      e->sum[k] = all_now;
    }
    e->last_settle = now;
  }
  b.lock.Unlock();
}

void WaiterTable::ForgetInChild() {
  // No locking: the child has one thread, and a bucket lock that a parent
  // thread held counts as free in the child (spin_lock.h).
  for (Bucket& b : buckets_) {
    for (Entry& e : b.entries) {
      if (e.lock != nullptr && e.also_counted != nullptr && e.waiters[0] > 0) {
        e.also_counted->fetch_sub(uint64_t(e.waiters[0]), std::memory_order_relaxed);
      }
      e = Entry{};
    }
    b.unregistered = 0;
    b.latest_from = 0;
  }
}

namespace {

ABSL_CONST_INIT WaiterTable g_waiters;

void ForgetWaitersInChild() { g_waiters.ForgetInChild(); }

// Registered before main, as the agent's other fork handlers (fork.h).
[[maybe_unused]] const bool g_fork_handler = (agent::OnForkChild(&ForgetWaitersInChild), true);

}  // namespace

WaiterTable& Waiters() { return g_waiters; }

}  // namespace lockprof::internal
