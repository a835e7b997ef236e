// pthread_mutex_lock, _trylock, _timedlock, _clocklock and _unlock, profiled;
// pthread_mutex_init and _destroy, watched.
//
// Fast paths: lock = the real trylock plus the hold sampler's countdown, in
// an entry point without a frame of its own; unlock = glibc's lock word
// (locked once, nobody waiting?) and a thread-local count (no held entry to
// end?), then the real unlock. Everything else is in interpose_common.h.
#include <pthread.h>
#include <time.h>

#include "absl/base/attributes.h"
#include "lockprof/agent/record/lock_lifetime.h"
#include "lockprof/primitives/interpose/interpose_common.h"
#include "lockprof/primitives/interpose/mutex_word.h"
#include "lockprof/primitives/interpose/real_pthread.h"

namespace lockprof::interpose {
namespace {

constexpr agent::LockMode kMutexModes[internal::WaiterTable::kClasses] = {agent::LockMode::kNone,
                                                                          agent::LockMode::kNone};

// The slow halves below are tail-called by the entry points, so their frame
// takes the entry point's place: __builtin_frame_address(0) and
// __builtin_return_address(0) in them are the frame and return address
// every profile charges (the program's call site), and the entry points'
// fast paths need no frame of their own. The empty asm after each inner
// call keeps that call from being a tail call in turn.

// An acquisition the hold sampler picked: `frame` and `caller` are the
// charged frame's.
inline void SampleMutexHold(pthread_mutex_t* m, const void* frame, const void* caller,
                            bool tried = false) {
  // A recursive re-acquisition is inside the hold already timed (or not).
  if (!InnerRecursiveHold(m)) SampleHold(m, agent::LockMode::kNone, frame, caller, tried);
}

// An acquisition whose hold countdown expired (or that lock tracking sends
// here); `r`: what the acquisition returned (0 or EOWNERDEAD), which this
// returns.
ABSL_ATTRIBUTE_NOINLINE int SampledAcquisition(pthread_mutex_t* m, int r, bool tried) {
  if (agent::HoldSampleDue()) {
    SampleMutexHold(m, __builtin_frame_address(0), __builtin_return_address(0), tried);
  }
  asm volatile("");
  return r;
}

// A waiter for a mutex tries only when glibc's lock word reads unlocked
// (MutexSpin, interpose_common.h, on when it looks).
// A priority-protected mutex's word holds its ceiling even when unlocked: it
// never looks free, and its waiter goes straight to glibc's lock.
int MutexSpinTry(pthread_mutex_t* m) {
  if (MutexWord(m) != 0) return EBUSY;
  const int r = CallGlibc(&HotFunctions::mutex_trylock, m);
  if (r == ENOTRECOVERABLE) ReleaseUnrecoverableTry(m);
  return r;
}

// After the first try returned `first` (nonzero): `block()` is the real
// blocking call, `block_until(clock, until)` the real timed one, `deadline` the
// call's (watched_block.h). Inlined into each of the noinline contended
// entries below, whose frame it charges.
template <typename Block>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline int MutexLockSlow(pthread_mutex_t* m, int first,
                                                      const void* frame, const void* caller,
                                                      const Deadline& deadline, Block block) {
  int r = first;
  if (r == ENOTRECOVERABLE) ReleaseUnrecoverableTry(m);  // The first try's.
  if (r == EBUSY) {
    r = ContendedAcquire(
        m, agent::LockMode::kNone, frame, caller, nullptr, deadline, MutexSpin(),
        [m] { return MutexSpinTry(m); }, block,
        [m](clockid_t clock, const timespec* until) {
          return clock == CLOCK_REALTIME ? Real().mutex_timedlock(m, until)
                                         : Real().mutex_clocklock(m, clock, until);
        });
  }
  // A timed acquisition is recorded as a try: it cannot hang (OrderCheckBeforeWait).
  if ((r == 0 || r == EOWNERDEAD) && agent::ShouldSampleHold()) {
    SampleMutexHold(m, frame, caller, /*tried=*/deadline.timed);
  }
  return r;
}

ABSL_ATTRIBUTE_NOINLINE int MutexLockContended(pthread_mutex_t* m, int first) {
  const int r = MutexLockSlow(m, first, __builtin_frame_address(0), __builtin_return_address(0),
                              Deadline{}, [m] { return CallGlibc(&HotFunctions::mutex_lock, m); });
  asm volatile("");
  return r;
}

// pthread_mutex_timedlock (clock CLOCK_REALTIME) and pthread_mutex_clocklock.
ABSL_ATTRIBUTE_NOINLINE int MutexTimedLockContended(pthread_mutex_t* m, int first, clockid_t clock,
                                                    const timespec* abstime, bool clocklock) {
  const int r = MutexLockSlow(m, first, __builtin_frame_address(0), __builtin_return_address(0),
                              Deadline{true, clock, abstime}, [m, clock, abstime, clocklock] {
                                return clocklock ? Real().mutex_clocklock(m, clock, abstime)
                                                 : Real().mutex_timedlock(m, abstime);
                              });
  asm volatile("");
  return r;
}

ABSL_ATTRIBUTE_NOINLINE int MutexUnlockSlow(pthread_mutex_t* m) {
  // Not the end of the critical section: a recursive mutex locked again.
  if (InnerRecursiveHold(m)) return CallGlibc(&HotFunctions::mutex_unlock, m);
  const bool tracking = agent::LockTrackingOn();
  // This thread's own hold of `m` may have been handed off since: its entry
  // must not pass for this unlock's, which would hide this hand-off.
  if (tracking) ForgetHandedOffMutexes(HandOffCount());
  ReleaseCharge charge;
  if (!BeforeRelease(m, SettlesWaiters(m), &charge) && tracking) {
    // Another thread's hold, or none; published before the real unlock
    // (hand_offs.h says why).
    NoteMutexHandOff(m, __builtin_return_address(0));
  }
  const int r = CallGlibc(&HotFunctions::mutex_unlock, m);
  if (r == 0) {
    AfterRelease(m, charge, kMutexModes, __builtin_frame_address(0), __builtin_return_address(0));
  }
  asm volatile("");
  return r;
}

}  // namespace
}  // namespace lockprof::interpose

// The acquisition of every lock entry point: the real trylock first, the
// slow half (`contended`, tail-called) only when it fails. `timed`: the
// entry point has a deadline, and its acquisitions are recorded as tries
// (OrderCheckBeforeWait, interpose_common.h).
#define LOCKPROF_MUTEX_ACQUIRE(m, timed, contended)                                           \
  do {                                                                                        \
    const int r =                                                                             \
        lockprof::interpose::CallGlibc(&lockprof::interpose::HotFunctions::mutex_trylock, m); \
    if (__builtin_expect(r != 0, 0)) return contended;                                        \
    if (__builtin_expect(lockprof::agent::HoldCountdownExpired(), 0)) {                       \
      return lockprof::interpose::SampledAcquisition(m, 0, /*tried=*/timed);                  \
    }                                                                                         \
    return r;                                                                                 \
  } while (0)

LOCKPROF_INTERPOSE_ENTRY LOCKPROF_INTERPOSE_FRAMELESS int pthread_mutex_lock(pthread_mutex_t* m) {
  LOCKPROF_MUTEX_ACQUIRE(m, false, lockprof::interpose::MutexLockContended(m, r));
}

LOCKPROF_INTERPOSE_ENTRY LOCKPROF_INTERPOSE_FRAMELESS int pthread_mutex_timedlock(
    pthread_mutex_t* m, const timespec* abstime) {
  LOCKPROF_MUTEX_ACQUIRE(m, true,
                         lockprof::interpose::MutexTimedLockContended(m, r, CLOCK_REALTIME, abstime,
                                                                      /*clocklock=*/false));
}

LOCKPROF_INTERPOSE_ENTRY LOCKPROF_INTERPOSE_FRAMELESS int pthread_mutex_clocklock(
    pthread_mutex_t* m, clockid_t clock, const timespec* abstime) {
  // glibc refuses other clocks before it looks at the lock.
  if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) {
    return lockprof::interpose::Real().mutex_clocklock(m, clock, abstime);
  }
  LOCKPROF_MUTEX_ACQUIRE(m, true,
                         lockprof::interpose::MutexTimedLockContended(m, r, clock, abstime,
                                                                      /*clocklock=*/true));
}

LOCKPROF_INTERPOSE_ENTRY LOCKPROF_INTERPOSE_FRAMELESS int pthread_mutex_trylock(
    pthread_mutex_t* m) {
  const int r =
      lockprof::interpose::CallGlibc(&lockprof::interpose::HotFunctions::mutex_trylock, m);
  if (__builtin_expect(r == 0 || r == EOWNERDEAD, 1) &&
      __builtin_expect(lockprof::agent::HoldCountdownExpired(), 0)) {
    return lockprof::interpose::SampledAcquisition(m, r, /*tried=*/true);
  }
  return r;
}

LOCKPROF_INTERPOSE_ENTRY int pthread_mutex_unlock(pthread_mutex_t* m) {
  using lockprof::interpose::t_held;
  // The common case first: a mutex held once, nobody waiting, and no held
  // entry of this thread's to end. Robust and PI mutexes (whose word holds
  // their owner's id) take the second test. While holders are tracked, a
  // thread with no entries may be unlocking another thread's hold (a
  // hand-off, hand_offs.h): one more load here, of a flag that changes
  // only with the settings.
  if (__builtin_expect(lockprof::interpose::MutexWord(m) == 1 && t_held.count == 0, 1)) {
    if (__builtin_expect(lockprof::agent::LockTrackingOn(), 0)) {
      return lockprof::interpose::MutexUnlockSlow(m);
    }
    return lockprof::interpose::CallGlibc(&lockprof::interpose::HotFunctions::mutex_unlock, m);
  }
  if (t_held.count != 0 || lockprof::interpose::MutexMayHaveWaiters(m)) {
    return lockprof::interpose::MutexUnlockSlow(m);
  }
  return lockprof::interpose::CallGlibc(&lockprof::interpose::HotFunctions::mutex_unlock, m);
}

// A mutex destroyed, or made anew where another may have been (a program
// may free a mutex without destroying it): whatever lock-order checking
// kept for its address leaves with it, as for lockprof's own locks
// (lock_lifetime.h): a self-deadlock reported for the old one must not
// hide the new one's. One relaxed load while the lock-order graph was never
// used. (std::mutex's constructor and destructor call neither.)
LOCKPROF_INTERPOSE_ENTRY int pthread_mutex_init(pthread_mutex_t* m,
                                                const pthread_mutexattr_t* attr) {
  lockprof::agent::OnLockDestroyed(m);
  return lockprof::interpose::RealMutexInit(m, attr);
}

LOCKPROF_INTERPOSE_ENTRY int pthread_mutex_destroy(pthread_mutex_t* m) {
  // Only a destroy that happens: one refused (EBUSY, the mutex locked) leaves
  // the mutex in use, with its edges.
  const int r = lockprof::interpose::RealMutexDestroy(m);
  if (r == 0) lockprof::agent::OnLockDestroyed(m);
  return r;
}
