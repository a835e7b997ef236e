#include "lockprof/primitives/condvar.h"

#include <time.h>

#include "lockprof/primitives/internal/blocked_wait.h"
#include "lockprof/primitives/internal/fatal.h"
#include "lockprof/primitives/internal/futex.h"

namespace lockprof {

// One waiting thread, on its own stack. prev/next/queued are guarded by
// list_lock_; `notified` is the futex it sleeps on.
struct CondVar::Waiter {
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  bool queued = false;
  std::atomic<uint32_t> notified{0};
};

void CondVar::LockList() {
  if (__builtin_expect(list_lock_.Lock(), 0)) {
    // First use in a fork()ed child: the queued waiters were the parent's
    // threads. Notifying them would wake nobody and lose the notification.
    head_ = tail_ = nullptr;
    waiters_.store(0, std::memory_order_relaxed);
  }
}

void CondVar::Enqueue(Waiter* w) {
  w->prev = tail_;
  w->next = nullptr;
  (tail_ != nullptr ? tail_->next : head_) = w;
  tail_ = w;
  w->queued = true;
  waiters_.fetch_add(1, std::memory_order_seq_cst);
}

void CondVar::Remove(Waiter* w) {
  (w->prev != nullptr ? w->prev->next : head_) = w->next;
  (w->next != nullptr ? w->next->prev : tail_) = w->prev;
  w->queued = false;
  waiters_.fetch_sub(1, std::memory_order_relaxed);
}

ABSL_ATTRIBUTE_NOINLINE bool CondVar::WaitImpl(std::unique_lock<Mutex>& lock, int64_t timeout_ns) {
  if (!lock.owns_lock()) internal::Fatal("CondVar::wait: the unique_lock does not own its mutex");
  Waiter self;
  // Queued while the mutex is still held: a notifier that changes the
  // state under the mutex afterwards finds this thread in the queue.
  LockList();
  Enqueue(&self);
  list_lock_.Unlock();
  const char* name = name_ != nullptr ? name_ : lock.mutex()->name();
  lock.unlock();
  // The wait starts now; its stack is captured outside any critical section.
  internal::BlockedWait blocked(__builtin_frame_address(0));
  const int64_t deadline = timeout_ns == kForever ? 0 : blocked.start() + timeout_ns;
  bool notified = true;
  while (self.notified.load(std::memory_order_acquire) == 0) {
    timespec left_ts;
    const timespec* timeout = nullptr;
    if (deadline != 0) {
      const int64_t left = deadline - agent::MonotonicNanos();
      if (left <= 0) {
        notified = false;
        break;
      }
      left_ts = {time_t(left / 1000000000), long(left % 1000000000)};
      timeout = &left_ts;
    }
    internal::FutexWait(&self.notified, 0, timeout);
  }
  if (!notified) {
    LockList();
    const bool still_queued = self.queued;
    if (still_queued) Remove(&self);
    list_lock_.Unlock();
    if (!still_queued) {
      // A notifier dequeued us just now and is about to set `notified`: the
      // notification is ours (reporting a timeout would lose it), and
      // `self` must outlive the notifier's store.
      while (self.notified.load(std::memory_order_acquire) == 0) internal::SpinPause();
      notified = true;
    }
  }
  // Recorded before re-locking: not inside the next critical section.
  blocked.Record({name, agent::LockMode::kNone, -1, agent::WaitKind::kCondition});
  lock.lock();
  return notified;
}

void CondVar::Notify(bool all) {
  LockList();
  Waiter* first = head_;
  Waiter* last = all ? tail_ : head_;
  for (Waiter* w = first; w != nullptr;) {
    Waiter* next = w->next;
    Remove(w);
    if (w == last) break;
    w = next;
  }
  list_lock_.Unlock();
  // Wake the dequeued waiters (a chain still linked by `next`). Read `next`
  // before setting `notified`: from then on the waiter may return and its
  // node vanish. The futex wake on a vanished node's address is harmless: a
  // private futex wake touches no memory, and futex sleepers re-check.
  if (first == nullptr) return;
  for (Waiter* w = first;;) {
    Waiter* next = w == last ? nullptr : w->next;
    w->notified.store(1, std::memory_order_release);
    internal::FutexWake(&w->notified, 1);
    if (next == nullptr) break;
    w = next;
  }
}

}  // namespace lockprof
