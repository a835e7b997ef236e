// Clocks used by the recording path.
//
// Waits and holds are measured with CLOCK_MONOTONIC in nanoseconds: it is a
// vDSO call (~20 ns), never goes backwards, and needs no cycles-to-ns
// conversion. It is read only on contended paths and on sampled holds, never
// on an uncontended, unsampled lock or unlock.
#ifndef LOCKPROF_AGENT_CLOCK_H_
#define LOCKPROF_AGENT_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace lockprof::agent {

// Monotonic time in nanoseconds. Never returns 0 (0 means "not set" in
// callers that store timestamps).
inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec + 1;
}

// Wall-clock time in nanoseconds since the Unix epoch, for pprof's time_nanos.
inline int64_t WallNanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_CLOCK_H_
