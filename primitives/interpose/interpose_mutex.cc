// pthread_mutex_lock, _trylock, _timedlock, _clocklock and _unlock, profiled.
//
// Fast paths: lock = the real trylock plus the hold sampler's countdown;
// unlock = one test (does this thread hold a lock needing the slow release,
// or does glibc's lock word say that threads may wait?) and the real
// unlock. Everything else is in interpose_common.h.
#include <pthread.h>
#include <time.h>

#include "absl/base/attributes.h"
#include "lockprof/primitives/interpose/interpose_common.h"
#include "lockprof/primitives/interpose/mutex_word.h"
#include "lockprof/primitives/interpose/real_pthread.h"

namespace lockprof::interpose {
namespace {

constexpr agent::LockMode kMutexModes[internal::WaiterTable::kClasses] = {agent::LockMode::kNone,
                                                                          agent::LockMode::kNone};

ABSL_ATTRIBUTE_NOINLINE void SampleMutexHold(pthread_mutex_t* m, const void* frame,
                                             const void* caller, bool tried = false) {
  // A recursive re-acquisition is inside the hold already timed (or not).
  if (!InnerRecursiveHold(m)) SampleHold(m, agent::LockMode::kNone, frame, caller, tried);
}

// After the first try returned `first` (nonzero).
template <typename Block>
ABSL_ATTRIBUTE_NOINLINE int MutexLockSlow(pthread_mutex_t* m, int first, const void* frame,
                                          const void* caller, const Deadline& deadline,
                                          Block block) {
  int r = first;
  if (r == EBUSY) {
    r = ContendedAcquire(
        m, agent::LockMode::kNone, frame, caller, nullptr, deadline,
        [m] { return __pthread_mutex_trylock(m); }, block,
        [m](const timespec* until) { return Real().mutex_timedlock(m, until); });
  }
  if ((r == 0 || r == EOWNERDEAD) && agent::ShouldSampleHold()) SampleMutexHold(m, frame, caller);
  return r;
}

ABSL_ATTRIBUTE_NOINLINE int MutexUnlockSlow(pthread_mutex_t* m, const void* frame,
                                            const void* caller) {
  // Not the end of the critical section: a recursive mutex locked again.
  if (InnerRecursiveHold(m)) return __pthread_mutex_unlock(m);
  ReleaseCharge charge;
  BeforeRelease(m, MutexMayHaveWaiters(m), &charge);
  const int r = __pthread_mutex_unlock(m);
  if (r == 0) AfterRelease(m, charge, kMutexModes, frame, caller);
  return r;
}

}  // namespace
}  // namespace lockprof::interpose

using lockprof::interpose::Deadline;
using lockprof::interpose::MutexLockSlow;

// The acquisition of every lock entry point: the real trylock first, the
// slow path only when it fails. `deadline`: the call's (watched_block.h).
#define LOCKPROF_MUTEX_ACQUIRE(m, deadline, ...)                                                 \
  do {                                                                                           \
    int r = __pthread_mutex_trylock(m);                                                          \
    if (__builtin_expect(r != 0, 0)) {                                                           \
      r = MutexLockSlow(m, r, __builtin_frame_address(0), __builtin_return_address(0), deadline, \
                        __VA_ARGS__);                                                            \
      asm volatile(""); /* no tail call: this frame is the one charged */                        \
      return r;                                                                                  \
    }                                                                                            \
    if (__builtin_expect(lockprof::agent::ShouldSampleHold(), 0)) {                              \
      lockprof::interpose::SampleMutexHold(m, __builtin_frame_address(0),                        \
                                           __builtin_return_address(0));                         \
    }                                                                                            \
    return 0;                                                                                    \
  } while (0)

LOCKPROF_INTERPOSE_ENTRY int pthread_mutex_lock(pthread_mutex_t* m) {
  LOCKPROF_MUTEX_ACQUIRE(m, Deadline{}, [m] { return __pthread_mutex_lock(m); });
}

LOCKPROF_INTERPOSE_ENTRY int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* abstime) {
  LOCKPROF_MUTEX_ACQUIRE(m, (Deadline{true, CLOCK_REALTIME, abstime}), [m, abstime] {
    return lockprof::interpose::Real().mutex_timedlock(m, abstime);
  });
}

LOCKPROF_INTERPOSE_ENTRY int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock,
                                                     const timespec* abstime) {
  // glibc refuses other clocks before it looks at the lock.
  if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) {
    return lockprof::interpose::Real().mutex_clocklock(m, clock, abstime);
  }
  LOCKPROF_MUTEX_ACQUIRE(m, (Deadline{true, clock, abstime}), [m, clock, abstime] {
    return lockprof::interpose::Real().mutex_clocklock(m, clock, abstime);
  });
}

LOCKPROF_INTERPOSE_ENTRY int pthread_mutex_trylock(pthread_mutex_t* m) {
  const int r = __pthread_mutex_trylock(m);
  if (__builtin_expect(r == 0 || r == EOWNERDEAD, 1) &&
      __builtin_expect(lockprof::agent::ShouldSampleHold(), 0)) {
    lockprof::interpose::SampleMutexHold(m, __builtin_frame_address(0), __builtin_return_address(0),
                                         /*tried=*/true);
  }
  return r;
}

LOCKPROF_INTERPOSE_ENTRY int pthread_mutex_unlock(pthread_mutex_t* m) {
  if (__builtin_expect(
          (lockprof::interpose::t_held.count != 0) | lockprof::interpose::MutexMayHaveWaiters(m),
          0)) {
    const int r = lockprof::interpose::MutexUnlockSlow(m, __builtin_frame_address(0),
                                                       __builtin_return_address(0));
    asm volatile("");
    return r;
  }
  return __pthread_mutex_unlock(m);
}
