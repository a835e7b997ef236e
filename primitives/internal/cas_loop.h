// The profiled compare-and-swap loop behind lockprof::Atomic<T>::Update and
// lockprof::ShardedCounter::Add.
//
// CasUpdate is inlined into its caller: a load, the user's function and one
// compare_exchange_weak, exactly what a hand-written CAS loop does when its
// first attempt succeeds. No clock, no thread-local, no call. Only when that
// first attempt fails does control leave the caller for CasRetryLoop, which
// counts the failed attempts, times them (when the CAS profile is on) and
// hands both to the agent after the loop succeeded.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_CAS_LOOP_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_CAS_LOOP_H_

#include <atomic>
#include <cstdint>

#include "absl/base/attributes.h"
#include "lockprof/agent/base/export.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/record.h"

namespace lockprof::internal {

// Records one CAS loop that needed `retries` failed attempts and started
// retrying at `start_ns` (MonotonicNanos). Out of line and not inlinable:
// its frame anchors the stack walk, so the sample's leaf is the function that
// ran the loop (lockprof's own frames in between are trimmed by name).
LOCKPROF_EXPORT void RecordCasLoop(int64_t retries, int64_t start_ns, const char* name);

// The order for loads that feed the user's function: it may dereference the
// value it is given (a lock-free stack's pop does), so it must see what the
// value's publisher wrote before the successful CAS that published it.
constexpr std::memory_order LoadOrder(std::memory_order order) {
  return order == std::memory_order_release   ? std::memory_order_relaxed
         : order == std::memory_order_acq_rel ? std::memory_order_acquire
                                              : order;
}

// The contended part of CasUpdate: `expected` is what the failed first
// attempt found. Returns the value the successful attempt replaced.
template <typename T, typename F>
ABSL_ATTRIBUTE_NOINLINE T CasRetryLoop(std::atomic<T>& value, T expected, F& fn,
                                       std::memory_order order, const char* name) {
  const int64_t start = agent::CasProfilingEnabled() ? agent::MonotonicNanos() : 0;
  int64_t retries = 1;  // The caller's first attempt.
  for (;;) {
    const T desired = fn(static_cast<const T&>(expected));
    if (value.compare_exchange_weak(expected, desired, order, LoadOrder(order))) break;
    ++retries;
  }
  if (start != 0) RecordCasLoop(retries, start, name);
  return expected;
}

// value = fn(value), atomically, by compare-and-swap; returns the value
// replaced. `fn` maps a const T& to a T and may run more than once.
template <typename T, typename F>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline T CasUpdate(std::atomic<T>& value, F& fn,
                                                std::memory_order order, const char* name) {
  T expected = value.load(LoadOrder(order));
  const T desired = fn(static_cast<const T&>(expected));
  if (__builtin_expect(value.compare_exchange_weak(expected, desired, order, LoadOrder(order)),
                       1)) {
    return expected;
  }
  const T replaced = CasRetryLoop(value, expected, fn, order, name);
  // Keeps the call above from becoming a tail call when the update ends the
  // caller's function: the caller's frame must stay on the stack, or the
  // sample would be charged to its caller instead.
  asm volatile("");
  return replaced;
}

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_CAS_LOOP_H_
