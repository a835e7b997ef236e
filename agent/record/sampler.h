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
// and returns true if this acquisition is to be timed.
LOCKPROF_EXPORT bool HoldSampleDue();

// The hold-sampling check every lockprof lock runs after acquiring: one TLS
// decrement and a branch.
inline bool ShouldSampleHold() {
  if (__builtin_expect(--tls_state.hold_countdown >= 0, 1)) return false;
  return HoldSampleDue();
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_SAMPLER_H_
