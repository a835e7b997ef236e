#include "lockprof/primitives/absl_mutex_profile.h"

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/base/internal/cycleclock.h"
#include "absl/synchronization/mutex.h"
#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/own_thread.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/primitives/internal/cycle_scale.h"
#include "lockprof/primitives/internal/spin_lock.h"
#include "lockprof/primitives/interpose/lock_names.h"

// 1 once a copy of lockprof registered Abseil's tracer. Exported (by
// liblockprof_preload.so too): a process may hold two copies of lockprof
// (the preload library and a program that links lockprof), Abseil keeps
// one tracer, and a debug build of Abseil (Debian's) aborts on the second
// registration of another function.
extern "C" {
LOCKPROF_EXPORT int lockprof_absl_tracer_registered = 0;
}

namespace lockprof {
namespace {

// Claims the registration for this copy of lockprof; false if another copy
// in this process claimed it. Every copy claims the same flag: the first
// definition the dynamic linker finds (liblockprof_preload.so's, or the
// program's own with -rdynamic), else this copy's.
bool ClaimRegistration() {
  auto* flag = static_cast<int*>(dlsym(RTLD_DEFAULT, "lockprof_absl_tracer_registered"));
  if (flag == nullptr) flag = &lockprof_absl_tracer_registered;
  return __atomic_exchange_n(flag, 1, __ATOMIC_ACQ_REL) == 0;
}

// 0 until the calibration at registration (below) has measured it.
std::atomic<double> g_ns_per_cycle{0};

// `cycles` of Abseil's clock in nanoseconds, at `ns_per_cycle`.
int64_t Nanos(int64_t cycles, double ns_per_cycle) {
  return int64_t(double(cycles) * ns_per_cycle);
}

// Waits traced while the calibration runs (tens of milliseconds, often just
// as a busy program starts or an incident is being looked at): their stacks
// are taken at once and their charge waits for the scale, rather than being
// dropped or charged at a scale that may be twice wrong. Bounded: past
// kMaxParked they count as waits charged to no release.
constexpr int kMaxParked = 64;
struct ParkedWait {
  int64_t cycles;
  agent::EventTags tags;
  agent::PendingContention pending;
};
internal::SpinLock g_parked_mu;
ParkedWait g_parked[kMaxParked];
int g_parked_count = 0;  // Guarded by g_parked_mu.
// The private mutex of the calibration (CalibrateNanosPerCycle), and the
// cycles its one traced wait took.
absl::Mutex g_calibration_mu(absl::kConstInit);
std::atomic<int64_t> g_calibration_cycles{0};

// A traced wait while the scale is unknown: sampled and parked, or, if the
// calibration ended meanwhile, recorded at once.
__attribute__((noinline)) void ParkWhileCalibrating(int64_t wait_cycles,
                                                    const agent::EventTags& tags,
                                                    const void* entry_frame) {
  agent::PendingContention pending;
  if (!agent::SampleContention(entry_frame, &pending)) return;
  g_parked_mu.Lock();
  const double scale = g_ns_per_cycle.load(std::memory_order_relaxed);
  const bool parked = scale == 0 && g_parked_count < kMaxParked;
  if (parked) g_parked[g_parked_count++] = {wait_cycles, tags, pending};
  g_parked_mu.Unlock();
  if (scale > 0) {
    agent::ChargeContention(Nanos(wait_cycles, scale), tags, pending);
  } else if (!parked) {
    agent::CountUnchargedWait();
  }
}

// Sets the calibrated scale and charges the waits parked meanwhile.
void SetScale(double ns_per_cycle) {
  g_parked_mu.Lock();
  g_ns_per_cycle.store(ns_per_cycle, std::memory_order_release);
  for (int i = 0; i < g_parked_count; ++i) {
    const ParkedWait& w = g_parked[i];
    agent::ChargeContention(Nanos(w.cycles, ns_per_cycle), w.tags, w.pending);
  }
  g_parked_count = 0;
  g_parked_mu.Unlock();
}

// Abseil's tracer: `wait_cycles` waited by the threads this release wakes.
__attribute__((noinline)) void TraceAbslMutex(const char* msg, const void* obj,
                                              int64_t wait_cycles) {
  if (wait_cycles <= 0 || agent::InRecorder()) return;
  if (obj == &g_calibration_mu) {
    g_calibration_cycles.store(wait_cycles);
    return;
  }
  const char* name;
  {
    agent::RecorderScope scope;
    name = interpose::LockName(obj);
  }
  if (std::strcmp(name, interpose::kUnnamedLock) == 0) name = "(absl)";
  const agent::EventTags tags{name};
  if (const double scale = g_ns_per_cycle.load(std::memory_order_acquire); scale > 0) {
    agent::RecordContention(Nanos(wait_cycles, scale), tags, __builtin_frame_address(0));
  } else {
    ParkWhileCalibrating(wait_cycles, tags, __builtin_frame_address(0));
  }
  asm volatile("");  // This frame is the capture's entry: no tail call.
}

// One traced wait of about 10 ms on the private mutex: nanoseconds per cycle
// of Abseil's library clock, as timed (0 if the tracer saw none, or if no
// thread could be started: the process at its thread limit). A waiter
// thread delayed between its timestamp and its Lock() makes it too large;
// nothing makes it much too small.
double TimeOneWait() {
  g_calibration_cycles.store(0);
  g_calibration_mu.Lock();
  std::atomic<int64_t> start{0};
  std::thread waiter = agent::TryStartOwnThread([&] {
    start = agent::MonotonicNanos();
    g_calibration_mu.Lock();
    g_calibration_mu.Unlock();
  });
  if (!waiter.joinable()) {
    g_calibration_mu.Unlock();
    return 0;
  }
  while (start.load() == 0) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const int64_t released = agent::MonotonicNanos();
  g_calibration_mu.Unlock();
  waiter.join();
  const int64_t cycles = g_calibration_cycles.load();
  return cycles > 0 ? double(released - start.load()) / double(cycles) : 0;
}

// Nanoseconds per unit of the cycle clock Abseil's library measures waits
// with. Not CycleClock::Frequency() from the header alone: the clock's scale
// (its kShift) depends on NDEBUG, and a distribution's Abseil may have been
// built with another setting than the program (Debian's was built without
// it, and its waits come out twice what the header's frequency says in a
// program built with -DNDEBUG). So contended waits of known length, on a
// private mutex, are traced and timed at registration, and pick the power of
// two between the two (internal/cycle_scale.h). One timing is not enough: a
// waiter delayed by about half the wait between its timestamp and its
// Lock() makes a timing twice too large, and still within 10% of a power of
// two (the wrong one, which doubled every charge after). So the search ends
// when two timings, each within 10% of a power of two, pick the same one
// (two waits, 20 ms, on a quiet machine); after five without that, the
// shortest timing's (delays only lengthen timings) decides.
double CalibrateNanosPerCycle() {
  const double header = 1e9 / absl::base_internal::CycleClock::Frequency();
  double best = 0;
  double agreed_on = 0;  // The scale of a good timing, waiting for a second.
  for (int i = 0; i < 5; ++i) {
    const double t = TimeOneWait();
    if (!(t > 0)) continue;
    if (best == 0 || t < best) best = t;
    const double scale = internal::SnapCycleScale(t, header);
    if (std::fabs(std::log2(t / scale)) >= 0.14) continue;  // Not within ~10%.
    if (scale == agreed_on) return scale;
    agreed_on = scale;
  }
  return internal::SnapCycleScale(best, header);  // The header's if none was traced.
}

}  // namespace

void ProfileAbslMutexes() {
  static std::atomic<bool> registered{false};
  if (registered.exchange(true)) return;
  if (!ClaimRegistration()) {
    std::fprintf(stderr,
                 "lockprof: absl::Mutex is profiled by another copy of lockprof in this "
                 "process (liblockprof_preload.so?): this one leaves it to that one\n");
    return;
  }
  if (agent::CurrentUnwindMode() == agent::UnwindMode::kFramePointers) {
    agent::SetUnwindMode(agent::UnwindMode::kFallback);
  }
  absl::RegisterMutexTracer(&TraceAbslMutex);
  SetScale(CalibrateNanosPerCycle());
}

}  // namespace lockprof
