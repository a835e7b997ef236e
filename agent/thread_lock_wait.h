// How long this thread has waited for locks: for lock-wait time on trace
// spans, as a hand-written "time spent in Lock()" counter would give, without
// writing one.
//
//   // At span start:
//   const lockprof::ThreadLockWait before = lockprof::ThisThreadLockWait();
//   ...  // the request's work, on this thread
//   // At span end:
//   const lockprof::ThreadLockWait waited = lockprof::ThisThreadLockWait() - before;
//   span->SetAttribute("lock_wait_ns", waited.lock_wait_ns);
//   span->SetAttribute("lock_waits", waited.lock_waits);
//
// What is counted: every wait of this thread that went to sleep — a
// contended acquisition of a lockprof::Mutex or SharedMutex (either mode),
// and, apart, a CondVar::wait — from the moment the thread gave up spinning
// until it was woken and (for a lock) held it. The brief spin before a lock
// sleeps (a few microseconds at most) and uncontended acquisitions count
// nothing. Pthread locks under lockprof's interposer count too while the
// block or mutex profile is on. The counts are kept whatever the profiling
// rates, exactly (no sampling): they cost two additions on a path that has
// just slept.
//
// Thread-safety: reads only the calling thread's counters; a thread cannot
// read another's. Cost: a few loads from thread-local storage.
#ifndef LOCKPROF_AGENT_THREAD_LOCK_WAIT_H_
#define LOCKPROF_AGENT_THREAD_LOCK_WAIT_H_

#include <cstdint>

#include "lockprof/agent/base/export.h"

namespace lockprof {

struct ThreadLockWait {
  // Nanoseconds slept waiting to acquire locks, and how many such waits.
  int64_t lock_wait_ns = 0;
  int64_t lock_waits = 0;
  // Nanoseconds slept in condition waits (CondVar::wait and friends, until
  // notified or timed out, before re-locking), and how many. Not lock
  // contention: a waiting consumer is usually idle, not slowed.
  int64_t condition_wait_ns = 0;
  int64_t condition_waits = 0;
};

// The difference of two readings of the same thread: what it waited between.
constexpr ThreadLockWait operator-(const ThreadLockWait& a, const ThreadLockWait& b) {
  return {a.lock_wait_ns - b.lock_wait_ns, a.lock_waits - b.lock_waits,
          a.condition_wait_ns - b.condition_wait_ns, a.condition_waits - b.condition_waits};
}

// This thread's totals since it started. Monotonic: difference two readings.
LOCKPROF_EXPORT ThreadLockWait ThisThreadLockWait();

}  // namespace lockprof

#endif  // LOCKPROF_AGENT_THREAD_LOCK_WAIT_H_
