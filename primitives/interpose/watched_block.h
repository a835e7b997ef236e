// The stall watchdog for an interposed lock's sleep.
//
// lockprof::Mutex's waiter sleeps on its own futex and wakes at the
// watchdog's threshold (BlockedWait::Sleep); an interposed lock's waiter
// sleeps inside glibc. While the watchdog is on (LOCKPROF_STALL_REPORT_MS),
// a wait that could outlast the threshold sleeps first in the lock's timed
// acquisition, with the threshold as its deadline; if that times out, the
// stall is reported once and the caller's own call is made. The caller sees
// what that call returns, as without the watchdog.
//
// The first sleep's deadline is on the caller's deadline's clock, so that a
// jump of the system clock cannot hold a call with a CLOCK_MONOTONIC
// deadline past it (glibc refuses that clock for the caller's own call
// where it would refuse it here: a priority-inheritance mutex on a kernel
// without FUTEX_LOCK_PI2). Without a deadline, on CLOCK_REALTIME, the one
// clock every kind's timed lock takes: a jump of the system clock then
// moves the report earlier or later, nothing else.
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_WATCHED_BLOCK_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_WATCHED_BLOCK_H_

#include <errno.h>
#include <time.h>

#include <cstdint>

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/primitives/internal/futex.h"

namespace lockprof::interpose {

// What glibc checks of a timed acquisition's deadline before it looks at
// the lock (it returns EINVAL for these even when the lock is free, so the
// interposer must not try first).
inline bool ValidDeadline(clockid_t clock, const timespec* abstime) {
  return (clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC) && abstime != nullptr &&
         abstime->tv_nsec >= 0 && abstime->tv_nsec < 1000000000;
}

// The caller's deadline: none for pthread_mutex_lock and the like.
struct Deadline {
  bool timed = false;
  clockid_t clock = CLOCK_REALTIME;
  const timespec* abstime = nullptr;

  // Nanoseconds until it passes: INT64_MAX if untimed, 0 if it passed or
  // is one glibc refuses (its call must then return at once, as it would).
  int64_t NanosLeft() const {
    if (!timed) return INT64_MAX;
    if (!ValidDeadline(clock, abstime)) return 0;
    timespec now;
    if (clock_gettime(clock, &now) != 0) return 0;
    const int64_t left = (int64_t(abstime->tv_sec) - int64_t(now.tv_sec)) * 1000000000 +
                         (abstime->tv_nsec - now.tv_nsec);
    return left > 0 ? left : 0;
  }
};

// Sleeps for `lock` (described by `tags`, waited for since `start`) in
// `block()`, the caller's own call. While the stall watchdog is on and
// `deadline` is later than its threshold, sleeps first in
// `block_until(clock, until)`, the lock's timed acquisition, until the
// threshold, and reports the stall if that times out.
template <typename Block, typename BlockUntil>
int WatchedBlock(const void* lock, const agent::EventTags& tags, int64_t start,
                 const Deadline& deadline, Block block, BlockUntil block_until) {
  const int64_t threshold = agent::StallThresholdNanos();
  if (__builtin_expect(threshold <= 0, 1)) return block();
  const int64_t left = start + threshold - agent::MonotonicNanos();
  if (left > 0) {
    if (deadline.NanosLeft() <= left) return block();  // It ends first.
    const clockid_t clock = deadline.timed ? deadline.clock : CLOCK_REALTIME;
    const timespec until = internal::ClockTimeAfter(clock, left);
    const int r = block_until(clock, &until);
    if (r != ETIMEDOUT) return r;
  }
  agent::ReportStall(lock, tags, start);
  return block();
}

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_WATCHED_BLOCK_H_
