#include "lockprof/primitives/condvar.h"

#include <time.h>

#include <climits>

#include "lockprof/primitives/internal/blocked_wait.h"
#include "lockprof/primitives/internal/fatal.h"
#include "lockprof/primitives/internal/futex.h"
#include "lockprof/primitives/internal/name_copy.h"

namespace lockprof {

namespace {
// Waiter::state. A notifier claims a waiting waiter under the list lock
// (kWaiting -> kClaimed), dequeues it, and after releasing the list lock
// stores kNotified and wakes it. A waiter whose deadline passed claims its
// timeout instead (kWaiting -> kTimedOut); notifiers then pass it over,
// and it dequeues itself. Exactly one of the two wins.
constexpr uint32_t kWaiting = 0;
constexpr uint32_t kClaimed = 1;
constexpr uint32_t kNotified = 2;
constexpr uint32_t kTimedOut = 3;
}  // namespace

// One waiting thread, on its own stack. prev/next/queued are guarded by
// list_lock_; `state` is the futex it sleeps on; wake_next chains the
// waiters one Notify claimed.
struct CondVar::Waiter {
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
  Waiter* wake_next = nullptr;
  bool queued = false;
  // agent::SteadyNanos() at which the wait times out; 0: never. The
  // destructor reads it (under list_lock_) to tell a waiter past it, which
  // is leaving, from a blocked one.
  int64_t deadline = 0;
  std::atomic<uint32_t> state{kWaiting};
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

void CondVar::Unlink(Waiter* w) {
  (w->prev != nullptr ? w->prev->next : head_) = w->next;
  (w->next != nullptr ? w->next->prev : tail_) = w->prev;
  w->queued = false;
}

// The decrement is the waiter's last access: until it, the destructor
// waits (waiters_ counts us).
void CondVar::LeaveQueue(Waiter* w) {
  LockList();
  if (w->queued) Unlink(w);
  list_lock_.Unlock();
  if (waiters_.fetch_sub(1, std::memory_order_acq_rel) & kDestroying) {
    internal::FutexWake(&waiters_, INT_MAX);
  }
}

// Waiters still counted are queued ones — blocked, which destruction
// should not see (the standard forbids it; we do not hang on it) or
// leaving after a timeout, which it waits for, whether they have claimed
// it yet or only their deadline has passed (they will claim it once they
// run: nobody notifies a CondVar being destroyed) — and leaving ones
// already out of the queue.
void CondVar::AwaitLeavingWaiters() {
  for (;;) {
    LockList();
    const int64_t now = agent::SteadyNanos();
    uint32_t blocked = 0;
    for (Waiter* w = head_; w != nullptr; w = w->next) {
      const bool leaving = w->state.load(std::memory_order_acquire) == kTimedOut ||
                           (w->deadline != 0 && w->deadline <= now);
      if (!leaving) ++blocked;
    }
    const uint32_t seen = waiters_.fetch_or(kDestroying, std::memory_order_acq_rel) | kDestroying;
    list_lock_.Unlock();
    if ((seen & ~kDestroying) == blocked) return;
    internal::FutexWait(&waiters_, seen);
  }
}

ABSL_ATTRIBUTE_NOINLINE bool CondVar::WaitImpl(std::unique_lock<Mutex>& lock, int64_t timeout_ns) {
  if (!lock.owns_lock()) internal::Fatal("CondVar::wait: the unique_lock does not own its mutex");
  Waiter self;
  // On steady_clock's timeline, not the profiles' (condvar.h, Timeouts).
  if (timeout_ns != kForever) self.deadline = agent::SteadyNanos() + timeout_ns;
  // Queued while the mutex is still held: a notifier that changes the
  // state under the mutex afterwards finds this thread in the queue.
  LockList();
  Enqueue(&self);
  list_lock_.Unlock();
  // Copied now: once notified, this CondVar may be destroyed (condvar.h),
  // and a name in the object that holds it with it (name_copy.h).
  const internal::NameCopy name(name_ != nullptr ? name_ : lock.mutex()->name());
  lock.unlock();
  // The wait starts now; its stack is captured outside any critical section.
  internal::BlockedWait blocked(__builtin_frame_address(0));
  bool notified = true;
  for (;;) {
    uint32_t state = self.state.load(std::memory_order_acquire);
    if (state == kNotified) break;
    if (state == kClaimed) {
      // A notifier took us and is about to store kNotified: `self` must
      // outlive that store.
      internal::FutexWait(&self.state, kClaimed);
      continue;
    }
    timespec left_ts;
    const timespec* timeout = nullptr;
    if (self.deadline != 0) {
      const int64_t left = self.deadline - agent::SteadyNanos();
      if (left <= 0) {
        if (self.state.compare_exchange_strong(state, kTimedOut, std::memory_order_acq_rel)) {
          notified = false;
          break;
        }
        continue;  // Claimed by a notifier first: the notification is ours.
      }
      left_ts = {time_t(left / 1000000000), long(left % 1000000000)};
      timeout = &left_ts;
    }
    internal::FutexWait(&self.state, kWaiting, timeout);
  }
  if (!notified) LeaveQueue(&self);
  // Recorded before re-locking: not inside the next critical section.
  agent::EventTags tags = name.Tags();
  tags.wait = agent::WaitKind::kCondition;
  blocked.Record(tags);
  lock.lock();
  return notified;
}

void CondVar::Notify(bool all) {
  LockList();
  Waiter* first = nullptr;
  Waiter** last_link = &first;
  for (Waiter* w = head_; w != nullptr;) {
    Waiter* next = w->next;
    uint32_t waiting = kWaiting;
    // A waiter that claimed its timeout is passed over: it leaves by itself.
    if (w->state.compare_exchange_strong(waiting, kClaimed, std::memory_order_acq_rel)) {
      Unlink(w);
      waiters_.fetch_sub(1, std::memory_order_relaxed);
      w->wake_next = nullptr;
      *last_link = w;
      last_link = &w->wake_next;
      if (!all) break;
    }
    w = next;
  }
  list_lock_.Unlock();
  // From here on nothing touches *this: a waiter woken below may return,
  // and its caller may destroy the CondVar (every waiter was notified).
  // Wake the claimed waiters. Read wake_next before storing kNotified: from
  // then on the waiter may return and its node vanish. The futex wake on a
  // vanished node's address is harmless: a private futex wake touches no
  // memory, and futex sleepers re-check.
  for (Waiter* w = first; w != nullptr;) {
    Waiter* next = w->wake_next;
    w->state.store(kNotified, std::memory_order_release);
    internal::FutexWake(&w->state, 1);
    w = next;
  }
}

}  // namespace lockprof
