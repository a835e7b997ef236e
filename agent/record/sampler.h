// The samplers' internal half (the public half is agent/sampling.h): the
// rates in effect, each thread's random generator and the hold countdown
// that every lockprof lock runs after acquiring.
//
// Read on the recording path only with relaxed loads: a rate changed while
// events are recorded applies to each event as it happens to read it.
#ifndef LOCKPROF_AGENT_RECORD_SAMPLER_H_
#define LOCKPROF_AGENT_RECORD_SAMPLER_H_

#include <atomic>
#include <cstdint>

#include "lockprof/agent/base/export.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof::agent {

struct Rates {
  std::atomic<int> mutex_fraction;
  std::atomic<int64_t> block_rate_ns;
  std::atomic<int> hold_rate;
};

// Constant-initialised with the defaults; the environment is applied by
// ApplyEnvironment() before main (see sampling.cc).
LOCKPROF_EXPORT extern Rates g_rates;

// Uniform 64-bit random number from this thread's generator.
uint64_t NextRandom();

// True when a sampler that needs wait timings is on: the pthread
// interposer's contended paths read the clock only then.
inline bool ContentionTimingEnabled() {
  return g_rates.mutex_fraction.load(std::memory_order_relaxed) > 0 ||
         g_rates.block_rate_ns.load(std::memory_order_relaxed) > 0;
}

// Called when tls_state.hold_countdown went negative: draws the next stride
// and returns true if this acquisition is to be timed. While lock tracking
// is on (lock_tracking.h) it keeps the countdown expired, so that every
// acquisition reaches the primitive's hook, and returns true.
LOCKPROF_EXPORT bool HoldSampleDue();

// The hold-sampling check of the pthread interposer: one TLS decrement and
// a branch.
inline bool ShouldSampleHold() {
  if (__builtin_expect(--tls_state.hold_countdown >= 0, 1)) return false;
  return HoldSampleDue();
}

// The check every lockprof primitive runs after acquiring: one TLS
// decrement and a branch. When it is true the primitive calls its hook
// (primitives/internal/acquire_hook.h), which asks HoldSampleDue() — or,
// while lock tracking is on, records the lock and asks
// TrackedHoldSampleDue(), leaving the countdown to run down below zero so
// that every acquisition gets there.
inline bool HoldCountdownExpired() { return --tls_state.hold_countdown < 0; }

// The weight of this thread's latest timed hold: how many holds it stands
// for, the rate of the stride that picked it (DrawHoldSample in
// sampling.cc). Read at the hold's release, by the thread that took it.
// (A hold that ends after a later one of the same thread was timed gets the
// later one's weight: the two differ only if the rate changed between their
// strides' draws.)
inline int64_t HoldSampleWeight() {
  return tls_state.hold_weight > 0 ? tls_state.hold_weight
                                   : g_rates.hold_rate.load(std::memory_order_relaxed);
}

// TrackedHoldSampleDue's slow half: the tracked countdown went negative.
LOCKPROF_EXPORT bool TrackedHoldSampleDueSlow();

// Whether a hold is to be timed, for an acquisition that reached the
// primitive's hook because lock tracking is on (not because its countdown
// expired): true with probability 1 / the hold rate, drawn as HoldSampleDue
// draws, from a countdown of its own.
inline bool TrackedHoldSampleDue() {
  if (__builtin_expect(--tls_state.tracked_hold_countdown >= 0, 1)) return false;
  return TrackedHoldSampleDueSlow();
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_SAMPLER_H_
