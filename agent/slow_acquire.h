// A hook for logging slow lock acquisitions, as the "slow mutex acquire"
// pattern does by hand:
//
//   void LogSlowAcquire(const lockprof::SlowAcquire& s) {
//     my_logger.Warn("slow mutex acquire", "lock", s.lock ? s.lock : "?",
//                    "waited_ms", s.waited.count() / 1e6);
//   }
//   lockprof::SetSlowAcquireHook(std::chrono::milliseconds(100), LogSlowAcquire,
//                                /*one_in=*/10);
//
// lockprof calls the hook; what it does (log, count, trace) is yours, so
// lockprof does not pick a logging library for you.
//
// Where it runs: on the thread that waited, when it releases the lock it
// waited for (for a reader/writer lock, that read or write hold), after the
// release. So the hook has the thread's own context (request ids in
// thread-locals, say), as the hand-written pattern's log statement right
// after Lock() has, without that pattern's price: nobody waits for the lock
// while the hook runs. It may take any lock, the one it reports included;
// lockprof locks it takes are not recorded (the recorder is marked busy on
// this thread), so a hook cannot recurse into itself. It runs with
// cancellation disabled: a lock or unlock call is no cancellation point, so
// a pthread_cancel() meanwhile acts at the thread's next one. The exception: a
// thread that holds more than four locks it had to wait for (read holds
// included) has no room left to put off a fifth one's report until its
// release, and that acquisition is not reported (it is recorded in the
// profiles and metrics as any other).
//
// What reaches it: every contended acquisition of a lockprof lock that
// waited at least `threshold`, while the block profile is on (the default;
// the waits are measured by the block profiler's path), sampled: about 1
// in `one_in` of those slow acquisitions, by a random draw.
#ifndef LOCKPROF_AGENT_SLOW_ACQUIRE_H_
#define LOCKPROF_AGENT_SLOW_ACQUIRE_H_

#include <atomic>
#include <chrono>
#include <cstdint>

#include "lockprof/agent/base/export.h"
#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/stack_trace.h"

namespace lockprof {

struct SlowAcquire {
  // The lock's name, or nullptr for an unnamed lock; one longer than 127
  // bytes may be cut there (between characters). Valid only during the
  // call: the lock, and its name with it, may be gone after it.
  const char* lock;
  const char* mode;  // "read" or "write" for a reader/writer lock, else nullptr.
  std::chrono::nanoseconds waited;
  // The waiter's stack: return addresses, the caller of lock() first. Valid
  // only during the call.
  const uintptr_t* stack;
  int stack_depth;
};

using SlowAcquireHook = void (*)(const SlowAcquire& acquire);

// Installs `hook` (replacing any previous one), called for about 1 in
// `one_in` (>= 1) acquisitions that waited at least `threshold`. A nullptr
// hook removes it. Thread-safe; a hook being removed may still be running
// (or be called once more) on other threads as this returns. An exception
// the hook throws is dropped: it cannot leave the lock or unlock call.
LOCKPROF_EXPORT void SetSlowAcquireHook(std::chrono::nanoseconds threshold, SlowAcquireHook hook,
                                        int one_in = 1);

namespace agent {

extern std::atomic<int64_t> g_slow_acquire_threshold_ns;  // INT64_MAX: no hook.

void CallSlowAcquireHook(int64_t wait_ns, const EventTags& tags, const StackTrace& stack);

// Called by the recorder for every wait: one relaxed load and a compare
// unless a hook is installed and the wait is slow.
inline void MaybeReportSlowAcquire(int64_t wait_ns, const EventTags& tags,
                                   const StackTrace& stack) {
  if (__builtin_expect(wait_ns >= g_slow_acquire_threshold_ns.load(std::memory_order_relaxed), 0)) {
    CallSlowAcquireHook(wait_ns, tags, stack);
  }
}

}  // namespace agent
}  // namespace lockprof

#endif  // LOCKPROF_AGENT_SLOW_ACQUIRE_H_
