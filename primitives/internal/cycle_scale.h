// SnapCycleScale: the scale of the cycle clock that a prebuilt Abseil times
// absl::Mutex waits with, from one rough measurement.
//
// Abseil's CycleClock is the TSC shifted right by kShift, and kShift depends
// on NDEBUG: 2 in a debug build, 1 in a release build on x86 (Debian's
// libabsl is built without NDEBUG; a program that includes the header with
// -DNDEBUG sees kShift 1). So the library's cycles and the header's differ
// by a power of two, 2^-2 to 2^2, and nothing else: the header's
// CycleClock::Frequency() (Abseil's own TSC frequency estimate) is right up
// to that factor. A calibration that times one traced wait against the
// monotonic clock only has to pick the factor. Taking its measurement as the
// scale instead made every later absl::Mutex charge as wrong as that one
// wait's timing: 19% too high in a loaded sanitizer build, where the
// calibration's waiter thread was delayed between its timestamp and its
// Lock(). Snapped to the nearest power of two, a measurement within a
// factor of the square root of 2 (29% short to 41% long) gives the exact
// scale.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_CYCLE_SCALE_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_CYCLE_SCALE_H_

#include <cmath>

namespace lockprof::internal {

// `measured`: nanoseconds per library cycle as timed (<= 0: no measurement);
// `header`: 1e9 / the header's CycleClock::Frequency(). Returns header times
// the power of two (2^-2 .. 2^2) nearest to measured / header.
inline double SnapCycleScale(double measured, double header) {
  if (!(measured > 0) || !(header > 0)) return header;
  const double k = std::round(std::log2(measured / header));
  return std::ldexp(header, int(std::fmax(-2.0, std::fmin(2.0, k))));
}

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_CYCLE_SCALE_H_
