// lockprof's Prometheus metrics: what profiles show per stack, summed per
// lock, all the time; plus the agent's own health.
//
// The admin endpoint serves them at /metrics (see admin_server.h). A program
// with its own HTTP server (or its own Prometheus client library) can append
// WriteMetrics()'s text to what it serves.
//
// Per lock (label lock="<name>"; lock="(unnamed)" for locks without a name
// or with an empty one, lock="(other)" for locks the per-lock table has no
// room for: 256 entries, one per name and mode, found by probing at most 32
// of them, so "(other)" may begin from about 200; label mode="read"/"write"
// on reader/writer locks only). Every counter, bucket and sum is written as
// the most any scrape has read: a read that gave up waiting for a recording
// thread preempted in the middle of moving its values may miss them until
// the next, and Prometheus would take a drop for a reset.
//   lockprof_lock_wait_seconds        histogram of each contended
//       acquisition's wait, buckets 1 us * 2^k up to 8.39 s. Every wait is
//       counted (no sampling), on the block profiler's path: it needs the
//       block profile on, which it is by default. Acquisitions that got the
//       lock while spinning (a few microseconds at most) are not contended
//       here, and CondVar waits (for a condition, not for the lock) are not
//       counted.
//   lockprof_lock_contentions_total   contended acquisitions that slept
//       (the same count as the histogram's _count, as a plain counter for
//       alerts).
//   lockprof_lock_waits_total   every acquisition that found the lock taken,
//       whether it then got the lock while spinning or after a sleep (needs
//       the block profile on); minus the contentions, the waits that ended
//       in the spin, which no profile shows. Interposed pthread locks count
//       only the waits that slept.
//   lockprof_lock_hold_seconds        histogram of critical-section lengths,
//       from the hold sampler: each sampled section counts as
//       SetHoldProfileRate() sections (and its length that many times in
//       _sum), so counts and rate()s are unbiased estimates.
// Health: sampling rates, samples recorded and samples whose stack was
// dropped (table full) per profile,
// profile memory, threads in the process, admin requests served, uploads
// (success, failure, dropped, retries, queue length).
//
// Cost: recording a metric is a hash, a short probe and a few relaxed atomic
// adds on paths that already handle a contended or sampled event: no lock, no
// allocation. Writing the metrics (the scrape) runs on the caller's thread
// and never makes an application thread wait.
#ifndef LOCKPROF_AGENT_METRICS_H_
#define LOCKPROF_AGENT_METRICS_H_

#include <string>

#include "lockprof/agent/base/export.h"

namespace lockprof {

// Appends every lockprof metric to *out, in the Prometheus text exposition
// format 0.0.4 (Content-Type: text/plain; version=0.0.4; charset=utf-8).
LOCKPROF_EXPORT void WriteMetrics(std::string* out);

}  // namespace lockprof

#endif  // LOCKPROF_AGENT_METRICS_H_
