// BlockedWait: the block-profile side of one wait that is about to sleep.
//
// Construct it in the lockprof function that sleeps (a noinline slow path),
// passing that function's __builtin_frame_address(0): it reads the clock and,
// when the block profile is on or holders are tracked, captures the
// waiter's stack — before the sleep, so that nothing is captured inside the
// critical section the waiter then enters. Record() charges the wait, from
// construction to now (or over the span Charged() gives), at that stack;
// RecordAtRelease() does so once the lock the wait ended with is released
// (deferred_block.h).
//
// A wait for a lock (not for a condition) is also published in the
// thread's record for /debug/lockprof/held until it ends, its lock-order
// edges are checked before the first sleep, and Sleep() reports it once if
// it outlasts the stall watchdog's threshold (lock_tracking.h).
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_BLOCKED_WAIT_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_BLOCKED_WAIT_H_

#include <atomic>
#include <cstdint>

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/stack_trace.h"
#include "lockprof/agent/record/thread_state.h"
#include "lockprof/primitives/internal/deferred_block.h"
#include "lockprof/primitives/internal/futex.h"

namespace lockprof::internal {

// What a wait for a lock checks before it sleeps, while lock-order checking
// is on (lock_tracking.h, CheckOrderBeforeWait).
enum class OrderCheck {
  // Nothing: a lock outside the lock-order graph (an interposed pthread lock
  // on the heap, whose memory may be reused without a destructor that would
  // tell the graph).
  kNone,
  // The edges from the locks this thread holds. For an interposed lock, not
  // whether this thread holds it: glibc lets another thread unlock a normal
  // mutex (programs use one as a semaphore), which this thread's record
  // would not see, and a recursive lock, an error-checking one or a timed
  // wait does not hang on its holder.
  kEdges,
  // The edges, and a wait for a lock this thread holds, which lockprof's own
  // locks never grant: a self-deadlock, reported before it hangs.
  kEdgesAndSelf,
  // A wait the lock itself says this thread holds and can never get again
  // (an interposed normal mutex whose glibc owner is this thread): the
  // self-deadlock, reported before it hangs, and no edges (the thread
  // hangs whatever they would say).
  kOwnLock,
};

class BlockedWait {
 public:
  // A wait for a condition: not published, no lock order.
  explicit BlockedWait(const void* entry_frame)
      : start_(agent::MonotonicNanos()),
        want_stack_(agent::BlockProfilingEnabled() && !agent::InRecorder()) {
    if (want_stack_) agent::CaptureStack(entry_frame, &stack_);
  }
  // A wait for `lock`, described by `tags`, checked as `order` says.
  // `start`: when the wait began (MonotonicNanos()), if that was before now;
  // -1 for now.
  BlockedWait(const void* entry_frame, const void* lock, const agent::EventTags& tags,
              OrderCheck order = OrderCheck::kEdgesAndSelf, int64_t start = -1)
      : start_(start >= 0 ? start : agent::MonotonicNanos()),
        want_stack_(agent::BlockProfilingEnabled() && !agent::InRecorder()),
        lock_(lock),
        tags_(tags) {
    if (want_stack_ || agent::LockTrackingOn()) agent::CaptureStack(entry_frame, &stack_);
    if (order == OrderCheck::kOwnLock) {
      agent::ReportWaitForOwnLock(lock, tags, entry_frame, &stack_);
    } else if (order != OrderCheck::kNone) {
      agent::CheckOrderBeforeWait(lock, tags, entry_frame, &stack_,
                                  order == OrderCheck::kEdgesAndSelf);
    }
    published_ = agent::NoteWaitBegin(lock, tags, start_, stack_);
  }
  ~BlockedWait() { EndWait(); }
  BlockedWait(const BlockedWait&) = delete;
  BlockedWait& operator=(const BlockedWait&) = delete;

  // Sleeps on `word` while it holds `expected` (futex bitset `bits`), until
  // woken, spuriously, or when the stall threshold passes (then it reports
  // the stall once): callers re-check their condition and call again.
  //
  // A wait that could still be reported sleeps kRecheckNs at most at a
  // time, so that a watchdog switched on or lowered while it sleeps (the
  // process found stuck, then SetStallReportThreshold) finds it within a
  // second: with the threshold read only as the sleep began, a deadlocked
  // waiter was never reported.
  static constexpr int64_t kRecheckNs = 1000000000;
  void Sleep(std::atomic<uint32_t>* word, uint32_t expected,
             uint32_t bits = FUTEX_BITSET_MATCH_ANY) {
    // Only published waits are reported: not a stall hook's own.
    if (stall_reported_ || !published_) {
      FutexWaitBitset(word, expected, bits);
      return;
    }
    int64_t timeout = kRecheckNs;
    if (const int64_t threshold = agent::StallThresholdNanos(); threshold > 0) {
      const int64_t left = start_ + threshold - agent::MonotonicNanos();
      if (left <= 0) {
        stall_reported_ = true;
        agent::ReportStall(lock_, tags_, start_);
        return;
      }
      timeout = left < kRecheckNs ? left : kRecheckNs;
    }
    FutexWaitBitset(word, expected, bits, timeout);
  }

  // When the wait started (monotonic nanoseconds), for the waiter table.
  int64_t start() const { return start_; }

  // The waiter table counted this wait for the mutex profile from `from`
  // (Enter) until `until` (Leave: the release that let it in; -1 if it was
  // not registered). The block event and the thread's wait totals then
  // span the same time, so that both profiles hold the same waiting; what
  // follows `until` is the scheduler's delay in running this thread
  // (internal/waiter_table.h, "Where a wait ends").
  void Charged(int64_t from, int64_t until) {
    if (until < 0 || from < start_ || until < from) return;
    start_ = from;
    end_ = until;
  }

  // Records the wait, which ends now, in the block profile. For a wait that
  // did not end holding a lock (a condition wait, before it re-locks).
  void Record(const agent::EventTags& tags) {
    const int64_t wait_ns = Count(tags);
    if (want_stack_) agent::RecordBlock(wait_ns, tags, stack_);
  }

  // The wait ends now with this thread holding `lock`: its event is parked
  // until the release, outside the critical section just entered.
  // `slow_unlock()` makes this thread's unlock of `lock` take the slow path,
  // which calls RecordDeferredBlocks; if it returns false (no room) the
  // event is recorded now, without the slow-acquire hook (which may take
  // `lock`, held here).
  template <typename SlowUnlock>
  void RecordAtRelease(const agent::EventTags& tags, const void* lock, SlowUnlock slow_unlock) {
    const int64_t wait_ns = Count(tags);
    if (!want_stack_) return;
    if (slow_unlock()) {
      DeferBlock(lock, wait_ns, tags, stack_);
    } else {
      agent::RecordBlock(wait_ns, tags, stack_, /*may_call_hook=*/false);
    }
  }

 private:
  // The wait's length, added to the thread's totals (thread_lock_wait.h)
  // whatever the profiling rates: every wait that slept passes here.
  int64_t Count(const agent::EventTags& tags) {
    EndWait();
    const int64_t wait_ns = (end_ >= 0 ? end_ : agent::MonotonicNanos()) - start_;
    agent::CountThreadWait(wait_ns, tags.wait == agent::WaitKind::kCondition);
    return wait_ns;
  }

  void EndWait() {
    // A wait that published nothing (inside the recorder) must not end the
    // one this thread published, which it is nested in.
    if (published_) agent::NoteWaitEnd();
    published_ = false;
    lock_ = nullptr;
  }

  int64_t start_;
  int64_t end_ = -1;  // Charged()'s, if any.
  bool want_stack_;
  bool stall_reported_ = false;
  bool published_ = false;      // NoteWaitBegin's, until NoteWaitEnd.
  const void* lock_ = nullptr;  // nullptr for a condition, or once the wait ended.
  agent::EventTags tags_;
  agent::StackTrace stack_;
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_BLOCKED_WAIT_H_
