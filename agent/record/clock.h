// Clocks used by the recording path.
//
// Waits and holds are measured in nanoseconds on one monotonic timeline,
// MonotonicNanos(). It is read only on contended paths and on sampled holds,
// never on an uncontended, unsampled lock or unlock — but there it is read
// twice per event, so its cost is much of a sampled event's, and a plain
// rdtsc costs less than half of clock_gettime through the vDSO (BENCHMARKS.md,
// "Figures behind design choices").
//
// So on x86-64, when the kernel itself keeps time with the TSC (its current
// clocksource is "tsc": invariant and synchronised across CPUs, as the
// kernel checked at boot), MonotonicNanos() reads the TSC and scales it:
// base_ns + (tsc - base_tsc) * mult / 2^32. The scale is calibrated against
// CLOCK_MONOTONIC over the first 100 ms after the first call (until then
// every read is a clock_gettime); the two timelines meet at the switch, and
// the calibration's error (< 1e-6) drifts the extrapolation from
// CLOCK_MONOTONIC by at most a few ms per hour — nothing compares the two:
// every user of MonotonicNanos() takes differences or deadlines on its own
// timeline. Elsewhere (another clocksource, another architecture) it stays
// clock_gettime(CLOCK_MONOTONIC).
//
// Readings on different CPUs may differ by the TSC's residual skew
// (nanoseconds on bare metal; microseconds on a loaded virtual machine, see
// BENCHMARKS.md): a duration computed across CPUs can come out that much
// short, or negative, which callers treat as zero.
#ifndef LOCKPROF_AGENT_RECORD_CLOCK_H_
#define LOCKPROF_AGENT_RECORD_CLOCK_H_

#include <time.h>

#include <atomic>
#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "lockprof/agent/base/export.h"

namespace lockprof::agent {

namespace clock_internal {

// 0 until the TSC scale is calibrated (forever, where the TSC is not used).
// Published with release order after g_base_ns and g_base_tsc.
LOCKPROF_EXPORT extern std::atomic<uint64_t> g_tsc_mult;
LOCKPROF_EXPORT extern int64_t g_base_ns;
LOCKPROF_EXPORT extern uint64_t g_base_tsc;

// CLOCK_MONOTONIC in nanoseconds, plus 1 (so never 0).
inline int64_t KernelMonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec + 1;
}

// Before calibration: KernelMonotonicNanos(), advancing the calibration.
LOCKPROF_EXPORT int64_t CalibratingMonotonicNanos();

}  // namespace clock_internal

// Monotonic time in nanoseconds. Never returns 0 (0 means "not set" in
// callers that store timestamps). Lock-free.
inline int64_t MonotonicNanos() {
#if defined(__x86_64__)
  const uint64_t mult = clock_internal::g_tsc_mult.load(std::memory_order_acquire);
  if (__builtin_expect(mult != 0, 1)) {
    const auto ticks = int64_t(__rdtsc() - clock_internal::g_base_tsc);
    return clock_internal::g_base_ns + int64_t((__int128{ticks} * __int128(mult)) >> 32);
  }
  return clock_internal::CalibratingMonotonicNanos();
#else
  return clock_internal::KernelMonotonicNanos();
#endif
}

// CLOCK_MONOTONIC, which std::chrono::steady_clock reads: the clock of the
// timeouts the primitives promise (CondVar::wait_for). MonotonicNanos() may
// drift from it (see above; and NTP slews CLOCK_MONOTONIC, not the TSC),
// which is harmless in a duration but would end a caller's timeout early.
inline int64_t SteadyNanos() { return clock_internal::KernelMonotonicNanos(); }

// Whether MonotonicNanos() reads the TSC now (for tests and diagnostics).
inline bool MonotonicNanosUsesTsc() {
  return clock_internal::g_tsc_mult.load(std::memory_order_acquire) != 0;
}

// Wall-clock time in nanoseconds since the Unix epoch, for pprof's time_nanos.
inline int64_t WallNanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_CLOCK_H_
