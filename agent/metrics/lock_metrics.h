// Per-lock metrics: wait and hold histograms and a contention counter for
// every named lock, kept in a fixed-size, lock-free table and read by the
// /metrics exposition (see metrics.h).
//
// Recording (from record.cc, on paths that already handle a contended or a
// sampled event) finds the lock's entry by its name's content and the mode,
// with one hash of the name and a short linear probe; a new lock claims an
// empty entry with one compare-and-swap and copies its name into it. Then it
// adds to a few atomic counters. No lock, no allocation, no system call: the
// table is a static array, whose pages the kernel supplies zeroed when first
// touched.
//
// Names are copied, never kept by address: the name a lock was given may
// live in a library that is dlclose()d later, and a scrape must not read it
// then (nor mistake another library's name at the same address for it).
// Names longer than kMaxLockName - 1 bytes are truncated, as in profiles.
// Locks with equal names share an entry; unnamed locks share the entries
// of the nullptr name. When the table is full (kCapacity entries, or a
// probe sequence longer than kMaxProbes) a lock's events go to one overflow
// entry per mode, exposed as lock="(other)": nothing recorded is lost.
// Two threads that record a new name at once may each claim an entry for
// it; readers merge entries by name (metrics.cc).
#ifndef LOCKPROF_AGENT_METRICS_LOCK_METRICS_H_
#define LOCKPROF_AGENT_METRICS_LOCK_METRICS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "lockprof/agent/record/event_tags.h"

namespace lockprof::agent {

// Exponential buckets: bucket k counts values <= 1 us * 2^k, for
// k < kFiniteBuckets (1 us ... 8.388608 s); the last bucket is +Inf.
inline constexpr int kFiniteBuckets = 24;
inline constexpr int kBuckets = kFiniteBuckets + 1;

// Upper bound of finite bucket k in nanoseconds.
inline constexpr int64_t BucketBoundNanos(int k) { return int64_t{1000} << k; }

// The bucket of a value in nanoseconds: the smallest k with
// value <= BucketBoundNanos(k), or kFiniteBuckets (+Inf).
int BucketIndex(int64_t nanos);

// A histogram of durations. Buckets are stored non-cumulative (an
// observation touches one bucket); the exposition accumulates them.
// Recording threads add to it through per-thread cells
// (tables/thread_cells.h), which readers add in.
struct AtomicHistogram {
  std::atomic<uint64_t> buckets[kBuckets];
  std::atomic<uint64_t> sum_nanos;
};

// A plain copy of a histogram, for readers.
struct HistogramSnapshot {
  uint64_t buckets[kBuckets] = {};
  uint64_t sum_nanos = 0;

  uint64_t count() const;
  void Add(const AtomicHistogram& h);
};

// What a reader sees for one lock (name, mode).
struct LockStatsSnapshot {
  const char* name;  // The table's copy (never freed); nullptr: unnamed locks.
  bool overflow;     // The "(other)" entry.
  LockMode mode;
  HistogramSnapshot wait;
  HistogramSnapshot hold;
  uint64_t contentions = 0;  // Waits that slept: wait's count.
  uint64_t waits = 0;        // Waits begun, spinning or sleeping.
};

// A thread waited `wait_ns` to acquire a lock (every wait, unsampled).
void ObserveLockWait(const EventTags& tags, int64_t wait_ns);

// A thread starts to wait for a lock (ObserveLockWait follows only if the
// wait sleeps).
void ObserveLockWaitStart(const EventTags& tags);

// A sampled critical section lasted `hold_ns`; it stands for `weight`
// critical sections (the hold sampler's rate).
void ObserveLockHold(const EventTags& tags, int64_t hold_ns, uint64_t weight);

// Calls `fn` with a snapshot of every entry in use, in table order
// (unmerged: see the file comment). Safe concurrently with recording.
void ForEachLockStats(const std::function<void(const LockStatsSnapshot&)>& fn);

// Entries in use, including overflow entries.
size_t LockStatsEntries();

// Bytes of the table (static: the kernel commits pages as they are used).
size_t LockStatsTableBytes();

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_METRICS_LOCK_METRICS_H_
