#include "lockprof/agent/record/clock.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "lockprof/agent/base/quiet_calls.h"

namespace lockprof::agent::clock_internal {

std::atomic<uint64_t> g_tsc_mult{0};
int64_t g_base_ns = 0;
uint64_t g_base_tsc = 0;

#if defined(__x86_64__)
namespace {

// How long the TSC is compared with CLOCK_MONOTONIC before it is trusted:
// long enough that the ~25 ns uncertainty of each reading pair is a 5e-7
// error, short enough that a program's first contended locks pay the slower
// clock only briefly.
constexpr int64_t kCalibrationNs = 100'000'000;

// kUnknown -> kDeciding (one thread reads the clocksource and takes the
// anchor) -> kCalibrating (every call checks whether kCalibrationNs have
// passed) -> kPublishing (one thread computes the scale) -> kDone. A fork()
// while a parent thread was deciding or publishing leaves the child on
// clock_gettime: slower, still right.
enum State : int { kUnknown, kDeciding, kCalibrating, kPublishing, kDone };
std::atomic<int> g_state{kUnknown};
// Written while deciding; read by threads that saw kCalibrating (acquire).
int64_t g_anchor_ns = 0;
uint64_t g_anchor_tsc = 0;

// Whether the kernel keeps time with the TSC, i.e. found it invariant and
// synchronised across CPUs; otherwise (kvm-clock, hpet, ...) we don't
// second-guess it.
bool KernelUsesTsc() {
  // The first clock read may be inside an application's lock call.
  NoCancelNoErrno quiet;
  const int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                      O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[16] = {};
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n >= 3 && std::strncmp(buf, "tsc", 3) == 0 && (n == 3 || buf[3] == '\n');
}

// CLOCK_MONOTONIC and the TSC at (about) the same instant: the TSC read at
// the midpoint of the kernel clock's read.
void ReadPair(int64_t* ns, uint64_t* tsc) {
  const uint64_t before = __rdtsc();
  *ns = KernelMonotonicNanos();
  const uint64_t after = __rdtsc();
  *tsc = before + (after - before) / 2;
}

}  // namespace
#endif

int64_t CalibratingMonotonicNanos() {
#if defined(__x86_64__)
  int state = g_state.load(std::memory_order_acquire);
  if (state == kUnknown &&
      g_state.compare_exchange_strong(state, kDeciding, std::memory_order_acquire)) {
    if (!KernelUsesTsc()) {
      g_state.store(kDone, std::memory_order_release);
      return KernelMonotonicNanos();
    }
    ReadPair(&g_anchor_ns, &g_anchor_tsc);
    g_state.store(kCalibrating, std::memory_order_release);
    return g_anchor_ns;
  }
  if (state == kCalibrating) {
    int64_t ns;
    uint64_t tsc;
    ReadPair(&ns, &tsc);
    if (ns - g_anchor_ns >= kCalibrationNs && tsc > g_anchor_tsc &&
        g_state.compare_exchange_strong(state, kPublishing, std::memory_order_acquire)) {
      const __int128 mult = (__int128{ns - g_anchor_ns} << 32) / __int128(tsc - g_anchor_tsc);
      // Sane rates only (under 256 ns per tick).
      if (mult > 0 && mult < (__int128{1} << 40)) {
        g_base_ns = ns;
        g_base_tsc = tsc;
        g_tsc_mult.store(uint64_t(mult), std::memory_order_release);
      }
      g_state.store(kDone, std::memory_order_release);
    }
    return ns;
  }
#endif
  return KernelMonotonicNanos();
}

}  // namespace lockprof::agent::clock_internal
