// pthread_cond_wait, _timedwait and _clockwait, profiled.
//
// A condition wait releases the mutex and re-acquires it inside glibc, out
// of the interposer's sight. So:
//  * The release is charged like pthread_mutex_unlock's (the waiters' time
//    during the critical section, the sampled hold) at the waiting stack,
//    but recorded just before the wait, while the mutex is still held: the
//    only place the interposer records inside a critical section, and only
//    when threads were waiting for the mutex or the hold was sampled.
//  * The whole wait, for the signal and then for the mutex, goes to the
//    block profile as a condition wait (as lockprof::CondVar's does),
//    recorded when the mutex is next released. The part spent re-acquiring
//    the mutex cannot be told apart from outside glibc: it is not charged to
//    the mutex's holder in the mutex profile.
//  * Block events this thread parked for the mutex (its own waits for it)
//    stay parked until the release after the wait: they may call the
//    slow-acquire hook, which may take the mutex, held here.
//  * A call glibc refuses before it lets go of the mutex (a bad deadline),
//    and a recursive mutex held more than once (the wait takes one level off
//    and the mutex stays held), release nothing.
// The condition variable itself is untouched (any pthread_cond_t, shared or
// not, any clock).
#include <pthread.h>
#include <time.h>

#include "absl/base/attributes.h"
#include "lockprof/primitives/interpose/interpose_common.h"
#include "lockprof/primitives/interpose/mutex_word.h"
#include "lockprof/primitives/interpose/real_pthread.h"

namespace lockprof::interpose {
namespace {

// Whether a condition wait that returned `r` holds its mutex again.
bool TookMutexBack(int r) { return r == 0 || r == ETIMEDOUT || r == EOWNERDEAD; }

// `deadline_ok`: glibc will not refuse the call's deadline (EINVAL before
// it touches the mutex).
template <typename Wait>
ABSL_ATTRIBUTE_NOINLINE int CondWait(pthread_mutex_t* m, const void* frame, const void* caller,
                                     bool deadline_ok, Wait wait) {
  if (!deadline_ok) return wait();
  // glibc's wait leaves errno alone (quiet_calls.h); the wait stays a
  // cancellation point.
  agent::KeepErrno keep_errno;
  const bool releases = !InnerRecursiveHold(m);
  if (releases) ReleaseForConditionWait(m, frame, caller);
  int r;
  if (PassesThrough(caller) || !agent::BlockProfilingEnabled()) {
    r = wait();
  } else {
    const char* name;
    {
      agent::RecorderScope scope;
      name = LockName(m);
    }
    internal::BlockedWait blocked(frame);
    r = wait();
    if (TookMutexBack(r)) {
      const agent::EventTags tags{name, agent::LockMode::kNone, -1, agent::WaitKind::kCondition};
      blocked.RecordAtRelease(tags, m,
                              [m] { return MarkSlowReleaseOnce(m, agent::LockMode::kNone); });
    }
  }
  if (releases && TookMutexBack(r)) {
    KeepParkedBlocksForRelease(m);
    if (agent::ShouldSampleHold()) SampleHold(m, agent::LockMode::kNone, frame, caller);
  }
  return r;
}

}  // namespace
}  // namespace lockprof::interpose

using lockprof::interpose::CondWait;
using lockprof::interpose::Real;

LOCKPROF_INTERPOSE_ENTRY int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  const int r = CondWait(m, __builtin_frame_address(0), __builtin_return_address(0), true,
                         [c, m] { return Real().cond_wait(c, m); });
  asm volatile("");
  return r;
}

LOCKPROF_INTERPOSE_ENTRY int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m,
                                                    const timespec* t) {
  const int r = CondWait(m, __builtin_frame_address(0), __builtin_return_address(0),
                         lockprof::interpose::ValidDeadline(CLOCK_REALTIME, t),
                         [c, m, t] { return Real().cond_timedwait(c, m, t); });
  asm volatile("");
  return r;
}

LOCKPROF_INTERPOSE_ENTRY int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m,
                                                    clockid_t clock, const timespec* t) {
  const int r = CondWait(m, __builtin_frame_address(0), __builtin_return_address(0),
                         lockprof::interpose::ValidDeadline(clock, t),
                         [c, m, clock, t] { return Real().cond_clockwait(c, m, clock, t); });
  asm volatile("");
  return r;
}
