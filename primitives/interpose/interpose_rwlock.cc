// pthread_rwlock_rdlock, _wrlock, _tryrdlock, _trywrlock, _timedrdlock,
// _timedwrlock, _clockrdlock, _clockwrlock and _unlock, profiled; samples are
// labelled mode=read / mode=write as lockprof::SharedMutex's are.
//
// Fast paths: acquisitions try first (the real try function) and take the
// slow path only if it fails; the release tests whether this thread holds a
// lock needing the slow release or any thread is blocked on any rwlock
// (one global counter, written only by blocked threads), and then settles
// only if glibc's word says this lock may have waiters (rwlock_word.h).
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "absl/base/attributes.h"
#include "lockprof/agent/base/fork.h"
#include "lockprof/primitives/interpose/interpose_common.h"
#include "lockprof/primitives/interpose/real_pthread.h"
#include "lockprof/primitives/interpose/rwlock_word.h"

namespace lockprof::interpose {
namespace {

using agent::LockMode;

constexpr LockMode kRwModes[internal::WaiterTable::kClasses] = {LockMode::kRead, LockMode::kWrite};

// Threads blocked in an rwlock acquisition now.
std::atomic<int64_t> g_rw_waiters{0};

// A fork()ed child has one thread: the parent's blocked ones are not its
// own, and would keep every release of the child on the slow path, and its
// waiters from spinning, for good.
void ForgetRwWaitersInChild() { g_rw_waiters.store(0, std::memory_order_relaxed); }
[[maybe_unused]] const bool g_rw_fork_handler = (agent::OnForkChild(&ForgetRwWaitersInChild), true);

int TryRw(pthread_rwlock_t* rw, LockMode mode) {
  return mode == LockMode::kRead ? CallGlibc(&HotFunctions::rwlock_tryrdlock, rw)
                                 : CallGlibc(&HotFunctions::rwlock_trywrlock, rw);
}

// The real timed acquisition in `mode`, until `until` on `clock`.
int TimedRw(pthread_rwlock_t* rw, LockMode mode, clockid_t clock, const timespec* until) {
  if (clock != CLOCK_REALTIME) {
    return mode == LockMode::kRead ? Real().rwlock_clockrdlock(rw, clock, until)
                                   : Real().rwlock_clockwrlock(rw, clock, until);
  }
  return mode == LockMode::kRead ? Real().rwlock_timedrdlock(rw, until)
                                 : Real().rwlock_timedwrlock(rw, until);
}

// A waiter for an rwlock tries after every pause, as a mutex's waiter once
// did: backing off measured no better for rwlocks (BENCHMARKS.md, "Contended
// programs under the interposer").
// It does not spin at all while another rwlock waiter is blocked (on any
// rwlock: one counter): threads that block outnumber the cores, and a
// spinner takes the CPU from the threads that would release, as in
// lockprof::SharedMutex. The cache workload ran 1.17-1.30x faster at 4-16
// threads on 2 cores, 0.92x at 2 (still 1.3x glibc alone's); the empty
// section unchanged (same section).
internal::SpinBackoff RwlockSpin() {
  const int pauses = g_rw_waiters.load(std::memory_order_relaxed) == 0 ? kSpinPauses : 0;
  return internal::SpinBackoff(pauses, /*max_step=*/1);
}

template <typename Block>
ABSL_ATTRIBUTE_NOINLINE int RwLockSlow(pthread_rwlock_t* rw, LockMode mode, int first,
                                       const void* frame, const void* caller,
                                       const Deadline& deadline, Block block) {
  int r = first;
  if (r == EBUSY) {
    r = ContendedAcquire(
        rw, mode, frame, caller, &g_rw_waiters, deadline, RwlockSpin(),
        [rw, mode] { return TryRw(rw, mode); }, block,
        [rw, mode](clockid_t clock, const timespec* until) {
          return TimedRw(rw, mode, clock, until);
        });
  }
  // A timed acquisition is recorded as a try (OrderCheckBeforeWait).
  if (r == 0 && agent::ShouldSampleHold()) SampleHold(rw, mode, frame, caller, deadline.timed);
  return r;
}

// A blocked waiter on one rwlock used to send every rwlock's release to the
// waiter table; glibc's word tells which locks have them.
ABSL_ATTRIBUTE_NOINLINE int RwUnlockSlow(pthread_rwlock_t* rw, const void* frame,
                                         const void* caller) {
  ReleaseCharge charge;
  BeforeRelease(rw, g_rw_waiters.load(std::memory_order_relaxed) != 0 && RwlockMayHaveWaiters(rw),
                &charge);
  const int r = CallGlibc(&HotFunctions::rwlock_unlock, rw);
  if (r == 0) AfterRelease(rw, charge, kRwModes, frame, caller);
  return r;
}

// RwlockWordKnown's check: a private lock through a read and a write hold.
bool CheckRwlockWord() {
  pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
  if (RwlockReaders(&rw) != 0 || CallGlibc(&HotFunctions::rwlock_tryrdlock, &rw) != 0) {
    return false;
  }
  const unsigned one_reader = RwlockReaders(&rw);
  CallGlibc(&HotFunctions::rwlock_unlock, &rw);
  if (CallGlibc(&HotFunctions::rwlock_trywrlock, &rw) != 0) return false;
  const unsigned writer = RwlockReaders(&rw);
  CallGlibc(&HotFunctions::rwlock_unlock, &rw);
  constexpr unsigned kWriting = kRwWritePhase | kRwWriteLocked;
  return one_reader == 1u << kRwReaderShift && writer == kWriting;
}

}  // namespace

bool RwlockWordKnown() {
  // 0: not checked yet, 1: known, 2: not. Racing first callers check alike.
  static std::atomic<int> state{0};
  int s = state.load(std::memory_order_relaxed);
  if (__builtin_expect(s == 0, 0)) {
    s = CheckRwlockWord() ? 1 : 2;
    state.store(s, std::memory_order_relaxed);
  }
  return s == 1;
}

}  // namespace lockprof::interpose

using lockprof::agent::LockMode;
using lockprof::interpose::Deadline;
using lockprof::interpose::Real;
using lockprof::interpose::RwLockSlow;

// `deadline`: the call's (watched_block.h).
#define LOCKPROF_RW_ACQUIRE(rw, mode, deadline, ...)                                       \
  do {                                                                                     \
    int r = lockprof::interpose::TryRw(rw, mode);                                          \
    if (__builtin_expect(r != 0, 0)) {                                                     \
      r = RwLockSlow(rw, mode, r, __builtin_frame_address(0), __builtin_return_address(0), \
                     deadline, __VA_ARGS__);                                               \
      asm volatile(""); /* no tail call: this frame is the one charged */                  \
      return r;                                                                            \
    }                                                                                      \
    if (__builtin_expect(lockprof::agent::ShouldSampleHold(), 0)) {                        \
      lockprof::interpose::SampleHold(rw, mode, __builtin_frame_address(0),                \
                                      __builtin_return_address(0), (deadline).timed);      \
    }                                                                                      \
    return 0;                                                                              \
  } while (0)

LOCKPROF_INTERPOSE_ENTRY int pthread_rwlock_rdlock(pthread_rwlock_t* rw) {
  LOCKPROF_RW_ACQUIRE(rw, LockMode::kRead, Deadline{}, [rw] {
    return lockprof::interpose::CallGlibc(&lockprof::interpose::HotFunctions::rwlock_rdlock, rw);
  });
}

LOCKPROF_INTERPOSE_ENTRY int pthread_rwlock_wrlock(pthread_rwlock_t* rw) {
  LOCKPROF_RW_ACQUIRE(rw, LockMode::kWrite, Deadline{}, [rw] {
    return lockprof::interpose::CallGlibc(&lockprof::interpose::HotFunctions::rwlock_wrlock, rw);
  });
}

LOCKPROF_INTERPOSE_ENTRY int pthread_rwlock_timedrdlock(pthread_rwlock_t* rw, const timespec* t) {
  if (!lockprof::interpose::ValidDeadline(CLOCK_REALTIME, t))
    return Real().rwlock_timedrdlock(rw, t);
  LOCKPROF_RW_ACQUIRE(rw, LockMode::kRead, (Deadline{true, CLOCK_REALTIME, t}),
                      [rw, t] { return Real().rwlock_timedrdlock(rw, t); });
}

LOCKPROF_INTERPOSE_ENTRY int pthread_rwlock_timedwrlock(pthread_rwlock_t* rw, const timespec* t) {
  if (!lockprof::interpose::ValidDeadline(CLOCK_REALTIME, t))
    return Real().rwlock_timedwrlock(rw, t);
  LOCKPROF_RW_ACQUIRE(rw, LockMode::kWrite, (Deadline{true, CLOCK_REALTIME, t}),
                      [rw, t] { return Real().rwlock_timedwrlock(rw, t); });
}

LOCKPROF_INTERPOSE_ENTRY int pthread_rwlock_clockrdlock(pthread_rwlock_t* rw, clockid_t c,
                                                        const timespec* t) {
  if (!lockprof::interpose::ValidDeadline(c, t)) return Real().rwlock_clockrdlock(rw, c, t);
  LOCKPROF_RW_ACQUIRE(rw, LockMode::kRead, (Deadline{true, c, t}),
                      [rw, c, t] { return Real().rwlock_clockrdlock(rw, c, t); });
}

LOCKPROF_INTERPOSE_ENTRY int pthread_rwlock_clockwrlock(pthread_rwlock_t* rw, clockid_t c,
                                                        const timespec* t) {
  if (!lockprof::interpose::ValidDeadline(c, t)) return Real().rwlock_clockwrlock(rw, c, t);
  LOCKPROF_RW_ACQUIRE(rw, LockMode::kWrite, (Deadline{true, c, t}),
                      [rw, c, t] { return Real().rwlock_clockwrlock(rw, c, t); });
}

LOCKPROF_INTERPOSE_ENTRY int pthread_rwlock_tryrdlock(pthread_rwlock_t* rw) {
  const int r =
      lockprof::interpose::CallGlibc(&lockprof::interpose::HotFunctions::rwlock_tryrdlock, rw);
  if (r == 0 && __builtin_expect(lockprof::agent::ShouldSampleHold(), 0)) {
    lockprof::interpose::SampleHold(rw, LockMode::kRead, __builtin_frame_address(0),
                                    __builtin_return_address(0), /*tried=*/true);
  }
  return r;
}

LOCKPROF_INTERPOSE_ENTRY int pthread_rwlock_trywrlock(pthread_rwlock_t* rw) {
  const int r =
      lockprof::interpose::CallGlibc(&lockprof::interpose::HotFunctions::rwlock_trywrlock, rw);
  if (r == 0 && __builtin_expect(lockprof::agent::ShouldSampleHold(), 0)) {
    lockprof::interpose::SampleHold(rw, LockMode::kWrite, __builtin_frame_address(0),
                                    __builtin_return_address(0), /*tried=*/true);
  }
  return r;
}

LOCKPROF_INTERPOSE_ENTRY int pthread_rwlock_unlock(pthread_rwlock_t* rw) {
  if (__builtin_expect((lockprof::interpose::t_held.count != 0) |
                           (lockprof::interpose::g_rw_waiters.load(std::memory_order_relaxed) != 0),
                       0)) {
    const int r = lockprof::interpose::RwUnlockSlow(rw, __builtin_frame_address(0),
                                                    __builtin_return_address(0));
    asm volatile("");
    return r;
  }
  return lockprof::interpose::CallGlibc(&lockprof::interpose::HotFunctions::rwlock_unlock, rw);
}
