// Block events of lock waits, recorded when the lock is released.
//
// A waiter learns how long it waited only once it holds the lock. Recording
// then (the wait metrics, the slow-acquire hook, a profile-table update that
// every other waiter's record contends for) would run inside the critical
// section it has just entered, and every thread queued behind it would wait
// for that too (the more threads queue, the more often: a thread that slept
// for a lock is the next holder). So the waiter parks the event, with the
// stack it captured before it slept, in a per-thread slot keyed by the lock
// (a copy of a few return addresses), makes its own unlock take the slow
// path, and the unlock records the event once the lock word is released.
//
// Per thread: at most kMaxDeferredBlocks events parked at once (one per lock
// held after a wait: nested locks); a further one is recorded at once,
// without the slow-acquire hook (which may take the lock held here). An
// unlock from a thread other than the one that locked (undefined behaviour
// for std::mutex, and for lockprof's locks) leaves the event parked until
// the locking thread next releases that lock.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_DEFERRED_BLOCK_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_DEFERRED_BLOCK_H_

#include <cstdint>

#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/sampler.h"
#include "lockprof/agent/record/stack_trace.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof::internal {

inline constexpr int kMaxDeferredBlocks = 4;

// The calling thread waited `wait_ns` for `lock`, which it now holds: parks
// the event, or records it now if this thread has kMaxDeferredBlocks parked
// already. Either way the event is recorded exactly once.
void DeferBlock(const void* lock, int64_t wait_ns, const agent::EventTags& tags,
                const agent::StackTrace& stack);

// RecordDeferredBlocks' case where this thread has events parked. Without
// the slow-acquire hook unless `may_call_hook` (false: `lock` is still held).
// `released`, if given, are the tags of the release that records them: its
// name (a copy taken before the release, name_copy.h) replaces the one the
// events were parked with, which may be gone with the lock.
void RecordParkedBlocks(const void* lock, bool may_call_hook = true,
                        const agent::EventTags* released = nullptr);

// Whether this thread has events parked for `lock`.
bool HasParkedBlocks(const void* lock);

// Records the events this thread parked for `lock`. Called by the lock's
// slow unlock path after the release; one thread-local test when none are
// parked.
inline void RecordDeferredBlocks(const void* lock, const agent::EventTags* released = nullptr) {
  if (__builtin_expect(agent::tls_state.deferred_blocks != 0, 0)) {
    RecordParkedBlocks(lock, true, released);
  }
}

// The tail of every slow unlock, once `lock` is released: the contention its
// section caused (`charged_ns`, 0 for none), its sampled hold (`hold_ns`, < 0
// when not sampled), both at the stack above `frame` (the unlock's own
// frame), then the block events this thread parked for `lock`. `tags` name
// the lock by a copy taken before the release (name_copy.h).
inline void RecordAfterRelease(const void* lock, const agent::EventTags& tags, int64_t charged_ns,
                               int64_t hold_ns, const void* frame) {
  if (charged_ns > 0) agent::RecordContention(charged_ns, tags, frame);
  if (hold_ns >= 0) agent::RecordHold(hold_ns, agent::HoldSampleWeight(), tags, frame);
  RecordDeferredBlocks(lock, &tags);
}

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_DEFERRED_BLOCK_H_
