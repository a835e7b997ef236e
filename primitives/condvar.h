// lockprof::CondVar: std::condition_variable for lockprof::Mutex, with the
// time spent waiting for a notification in the block profile.
//
// API: std::condition_variable's, on std::unique_lock<lockprof::Mutex>:
// wait, wait_for, wait_until (any clock; with and without a predicate),
// notify_one, notify_all. Not copyable, not movable; the constructors are
// constexpr, so a global CondVar needs no dynamic initialisation.
//
// Semantics. Waiters queue in arrival order; notify_one wakes the one that
// has waited longest, notify_all every thread waiting when it is called.
// A notification is never lost and never goes to a thread that started
// waiting after it: a waiter joins the queue before it releases the mutex,
// so a notifier that changed the state under the mutex (as the standard
// requires) finds it there. wait() returns only when notified, wait_for /
// wait_until also at the deadline (a waiter that times out at the moment it
// is notified takes the notification and reports no_timeout, or reports
// timeout and leaves the notification to the next waiter: notify_one's
// wake-up is not lost either). The predicate overloads loop,
// as the standard ones do.
//
// Cost. notify_one/notify_all with nobody waiting are one load: no system
// call, no lock. A wait is a spin-locked queue update, the mutex's unlock, a
// futex sleep, and the mutex's lock. notify_all wakes every waiter at once
// (they then contend for the mutex, as with std::condition_variable).
//
// Lifetime: as the standard allows, a CondVar may be destroyed once every
// thread waiting on it has been notified, before they return. A waiter
// whose deadline passes as it is notified either takes the notification
// (and never touches the CondVar again) or claims its timeout first (the
// notification then goes to the next waiter) and leaves the queue; the
// destructor waits for such a waiter to finish leaving. So it does for a
// waiter whose deadline has passed, notified or not: that thread is no
// longer blocked (as glibc's pthread_cond_destroy, which waits for it),
// even if it has not run since to claim its timeout.
//
// Timeouts: wait_for's is measured on std::chrono::steady_clock's clock
// (CLOCK_MONOTONIC), never on the profiles' clock (which scales the TSC and
// may drift from it), so a wait_for that reports a timeout, or a predicate
// still false, has waited its whole time as steady_clock counts it.
//
// Profiles (Go's sync.Cond.Wait). The time from releasing the mutex to
// being woken goes to the block profile at the waiter's stack, captured
// after the release and recorded before re-locking, so neither lengthens a
// critical section. Its label lock= is the CondVar's name if it has one,
// else the mutex's. Re-acquiring the mutex after waking is contention like
// any other lock(): the mutex and block profiles record it as such.
#ifndef LOCKPROF_PRIMITIVES_CONDVAR_H_
#define LOCKPROF_PRIMITIVES_CONDVAR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "lockprof/agent/base/export.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/primitives/internal/spin_lock.h"
#include "lockprof/primitives/mutex.h"

namespace lockprof {

class LOCKPROF_EXPORT CondVar {
 public:
  constexpr CondVar() = default;
  // `name` (a string literal or const array: see lock_name.h) labels this
  // CondVar's waits lock="<name>" instead of the mutex's name. Not copied.
  explicit constexpr CondVar(LockName name) : name_(name.get()) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;
  // Waits (a few instructions, unless a thread is preempted) for waiters
  // that timed out and are still leaving the queue; see Lifetime above.
  ~CondVar() {
    if (__builtin_expect(waiters_.load(std::memory_order_acquire) != 0, 0)) AwaitLeavingWaiters();
  }

  // Releases `lock`, sleeps until notified, re-acquires `lock`. `lock` must
  // own its mutex (checked: aborts otherwise).
  void wait(std::unique_lock<Mutex>& lock) { WaitImpl(lock, kForever); }

  template <typename Predicate>
  void wait(std::unique_lock<Mutex>& lock, Predicate stop_waiting) {
    while (!stop_waiting()) wait(lock);
  }

  template <typename Rep, typename Period>
  std::cv_status wait_for(std::unique_lock<Mutex>& lock,
                          const std::chrono::duration<Rep, Period>& timeout) {
    return WaitImpl(lock, TimeoutNanos(timeout)) ? std::cv_status::no_timeout
                                                 : std::cv_status::timeout;
  }

  // Returns stop_waiting(): false only if it still is at the deadline.
  template <typename Rep, typename Period, typename Predicate>
  bool wait_for(std::unique_lock<Mutex>& lock, const std::chrono::duration<Rep, Period>& timeout,
                Predicate stop_waiting) {
    const int64_t deadline = agent::SteadyNanos() + TimeoutNanos(timeout);
    while (!stop_waiting()) {
      const int64_t left = deadline - agent::SteadyNanos();
      if (left <= 0) return stop_waiting();
      WaitImpl(lock, left);
    }
    return true;
  }

  // Any clock: the deadline becomes a timeout measured on the monotonic
  // clock. A notified wait returns no_timeout; one that timed out returns
  // timeout only if `Clock` agrees that its deadline has passed (it may have
  // been adjusted meanwhile; otherwise the wake-up counts as spurious, as
  // libstdc++ does).
  template <typename Clock, typename Duration>
  std::cv_status wait_until(std::unique_lock<Mutex>& lock,
                            const std::chrono::time_point<Clock, Duration>& deadline) {
    if (WaitImpl(lock, NanosUntil(deadline))) return std::cv_status::no_timeout;
    return NanosUntil(deadline) > 0 ? std::cv_status::no_timeout : std::cv_status::timeout;
  }

  template <typename Clock, typename Duration, typename Predicate>
  bool wait_until(std::unique_lock<Mutex>& lock,
                  const std::chrono::time_point<Clock, Duration>& deadline,
                  Predicate stop_waiting) {
    while (!stop_waiting()) {
      if (wait_until(lock, deadline) == std::cv_status::timeout) return stop_waiting();
    }
    return true;
  }

  // Wakes the longest waiter / every waiter. Callable with or without the
  // mutex held.
  void notify_one() noexcept {
    if (waiters_.load(std::memory_order_seq_cst) != 0) Notify(false);
  }
  void notify_all() noexcept {
    if (waiters_.load(std::memory_order_seq_cst) != 0) Notify(true);
  }

  const char* name() const { return name_; }

 private:
  struct Waiter;
  static constexpr int64_t kForever = -1;

  // Durations are converted through long double nanoseconds, where no
  // unit overflows: in integer nanoseconds, time_point<Clock, seconds>::max()
  // (a common "no deadline") wraps to a time in the past, and 100 years in
  // picoseconds does not fit in 64 bits.
  using LongNanos = std::chrono::duration<long double, std::nano>;

  // A timeout as nanoseconds: 0 if not positive (or not a number), rounded
  // up, and capped at about 100 years.
  template <typename Rep, typename Period>
  static int64_t TimeoutNanos(const std::chrono::duration<Rep, Period>& d) {
    constexpr long double kCap = 100.0L * 365 * 24 * 3600 * 1e9L;
    const long double ns = LongNanos(d).count();
    if (!(ns > 0)) return 0;
    if (ns >= kCap) return int64_t(kCap);
    const auto whole = int64_t(ns);
    return whole < ns ? whole + 1 : whole;
  }

  // The time left until `deadline` on its own clock, as TimeoutNanos;
  // min() and max() of any unit included.
  template <typename Clock, typename Duration>
  static int64_t NanosUntil(const std::chrono::time_point<Clock, Duration>& deadline) {
    return TimeoutNanos(LongNanos(deadline.time_since_epoch()) -
                        LongNanos(Clock::now().time_since_epoch()));
  }

  // Waits with `lock` released for at most `timeout_ns` (kForever: no
  // limit). Returns true if notified, false on timeout.
  bool WaitImpl(std::unique_lock<Mutex>& lock, int64_t timeout_ns);
  void Notify(bool all);
  // Takes list_lock_ (forgetting a parent's waiters after fork()).
  void LockList();
  // Under list_lock_.
  void Enqueue(Waiter* w);
  void Unlink(Waiter* w);
  // A waiter that claimed its timeout leaves the queue.
  void LeaveQueue(Waiter* w);
  void AwaitLeavingWaiters();

  // waiters_: kDestroying is set while the destructor waits for leaving
  // waiters.
  static constexpr uint32_t kDestroying = uint32_t{1} << 31;

  internal::SpinLock list_lock_;
  Waiter* head_ = nullptr;  // Longest waiting first.
  Waiter* tail_ = nullptr;
  // Threads in the queue, and those that claimed a timeout and are still
  // leaving it (their last access to the CondVar is their decrement here);
  // notify does nothing more when it reads 0.
  std::atomic<uint32_t> waiters_{0};
  const char* name_ = nullptr;
};

}  // namespace lockprof

#endif  // LOCKPROF_PRIMITIVES_CONDVAR_H_
