// Sampling rates and the per-event sampling decisions.
//
// Three independent samplers (the CAS profile shares the mutex one), each
// with Go's semantics where Go has one:
//
//  * Mutex profile: SetMutexProfileFraction(rate) keeps about 1 in `rate`
//    contention events, and scales each kept event by `rate` (count and
//    delay), as Go >= 1.20 does, so profile totals are unbiased estimates.
//  * Block profile: SetBlockProfileRate(ns) keeps every wait of at least `ns`
//    nanoseconds and a shorter wait of d ns with probability d/ns, recorded as
//    count += ns/d, delay += ns (Go's debiasing, since Go 1.17).
//  * CAS profile (lockprof only, lockprof::Atomic and the types built on
//    it): shares the mutex profile's fraction, since a compare-and-swap loop
//    that retried is contention without a lock. About 1 in `rate` loops that
//    retried is kept, and its retries and retry time are scaled by `rate`
//    (so SetMutexProfileFraction and LOCKPROF_MUTEX_FRACTION set both).
//  * Hold profile (lockprof only): SetHoldProfileRate(rate) times about 1 in
//    `rate` acquisitions of every lockprof lock, contended or not, from the
//    moment the lock is acquired to the moment it is released, and records
//    each timed hold as count += rate, hold += rate * hold_ns at the
//    releasing stack (sample types holds/count and hold/nanoseconds;
//    `go tool pprof -sample_index=hold`). Each acquisition is timed with
//    probability exactly 1/rate, independently of the others and of how
//    long it holds, so scaled totals are unbiased. The decision is a
//    per-thread countdown with a geometric random stride (see
//    HoldSampleDue in agent/record/sampler.h), not a random draw per lock. The sampler's own work
//    (stride draw, stack capture, recording) runs before the first clock
//    read or after the release, outside the measured hold; what cannot be
//    left out is the latency of the two clock reads themselves: an empty
//    critical section measures tens of nanoseconds (agent/record/clock.h;
//    BENCHMARKS.md has the figures), so critical sections of a few hundred
//    nanoseconds or less are overstated by about that much.
//
// Defaults: mutex fraction 10, block rate 10000 ns (README "Sampling
// defaults" says why), hold rate 1000 (below).
// LOCKPROF_MUTEX_FRACTION, LOCKPROF_BLOCK_RATE and LOCKPROF_HOLD_RATE override
// them at start-up; a malformed value is reported once on stderr and ignored.
//
// Why a hold rate of 1000: every lock pays the countdown (one thread-local
// decrement and a predicted branch) whatever the rate; the rate sets how
// often a lock also pays for a sample (two clock reads, a stride draw, a
// stack walk and a table update), so the amortised cost per lock is the
// sample's cost divided by the rate. 1000 is the lowest rate whose cost
// cannot be told from the countdown alone, with ten times the resolution of
// 10000: a lock taken 1000 times a second gets about one sample a second.
// BENCHMARKS.md ("Figures behind design choices") has the measurements.
// Rare, long holds are what a count-based sampler sees least (a lock held
// 2 ms 100 times a second is timed once every ten seconds): lower the rate
// for a closer look while you investigate.
#ifndef LOCKPROF_AGENT_SAMPLING_H_
#define LOCKPROF_AGENT_SAMPLING_H_

#include <cstdint>

#include "lockprof/agent/base/export.h"

namespace lockprof {

// Sets the mutex profile's sampling fraction: 0 turns it off, a negative
// value only reads the current one. Returns the previous fraction.
LOCKPROF_EXPORT int SetMutexProfileFraction(int rate);

// Sets the block profile's rate in nanoseconds; <= 0 turns it off.
LOCKPROF_EXPORT void SetBlockProfileRate(int64_t rate_ns);
// The current block profile rate (0 when off).
LOCKPROF_EXPORT int64_t BlockProfileRate();

// Sets the hold profile's sampling rate: about 1 in `rate` acquisitions is
// timed. 0 turns it off; a negative value only reads. Returns the previous
// rate. The calling thread's next acquisition is drawn at the new rate;
// every other running thread picks it up when its current sampling stride
// ends (on average the old rate's number of its acquisitions; at most
// ~65536 after hold sampling was off).
LOCKPROF_EXPORT int SetHoldProfileRate(int rate);

}  // namespace lockprof

#endif  // LOCKPROF_AGENT_SAMPLING_H_
