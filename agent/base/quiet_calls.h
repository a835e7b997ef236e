// What the agent's own work inside an application's lock call must not
// change: errno, and where the thread can be cancelled.
//
// glibc's pthread_mutex_lock and the like never touch errno, and are not
// cancellation points; programs rely on both (a caller that reads errno
// after an unrelated lock, a cleanup handler that assumes the lock call
// returned). The agent's work in such a call (naming a lock from its
// object's symbol table, the clock's first look at the kernel's
// clocksource, a futex call, stack capture) makes system calls that set
// errno on failure, and open() and close() are cancellation points.
#ifndef LOCKPROF_AGENT_BASE_QUIET_CALLS_H_
#define LOCKPROF_AGENT_BASE_QUIET_CALLS_H_

#include <errno.h>
#include <pthread.h>

namespace lockprof::agent {

// Restores errno when it goes out of scope.
class KeepErrno {
 public:
  KeepErrno() : saved_(errno) {}
  ~KeepErrno() { errno = saved_; }
  KeepErrno(const KeepErrno&) = delete;
  KeepErrno& operator=(const KeepErrno&) = delete;

 private:
  const int saved_;
};

// Holds off cancellation (a request arriving meanwhile stays pending, for
// the application's next cancellation point) and keeps errno. Not around a
// wait that is itself a cancellation point (pthread_cond_wait's).
class NoCancelNoErrno {
 public:
  NoCancelNoErrno() { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state_); }
  ~NoCancelNoErrno() { pthread_setcancelstate(state_, nullptr); }
  NoCancelNoErrno(const NoCancelNoErrno&) = delete;
  NoCancelNoErrno& operator=(const NoCancelNoErrno&) = delete;

 private:
  KeepErrno errno_;  // Destroyed last: after pthread_setcancelstate.
  int state_ = PTHREAD_CANCEL_ENABLE;
};

// Runs `work` (a hook of the application's, or the report around it) inside
// a lock call, dropping any exception it throws: unwinding out of the lock
// call would leave the lock taken with nobody to release it, or its waiter
// registered for good.
template <typename F>
void RunDroppingExceptions(F&& work) noexcept {
  try {
    work();
  } catch (...) {
  }
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_BASE_QUIET_CALLS_H_
