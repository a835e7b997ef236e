#include "lockprof/agent/metrics.h"

#include <dirent.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/deadlock/lock_graph.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/agent/metrics/lock_metrics.h"
#include "lockprof/agent/metrics/prometheus_text.h"
#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/agent/record/label_sets.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/sampler.h"
#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof {

namespace {

using agent::HistogramSnapshot;
using agent::PromLabels;
using agent::PromText;

struct LockKey {
  std::string lock;
  agent::LockMode mode;
  bool operator<(const LockKey& o) const { return std::tie(lock, mode) < std::tie(o.lock, o.mode); }
};

struct LockTotals {
  HistogramSnapshot wait;
  HistogramSnapshot hold;
  uint64_t contentions = 0;
  uint64_t waits = 0;
};

void Add(HistogramSnapshot* into, const HistogramSnapshot& h) {
  for (int k = 0; k < agent::kBuckets; ++k) into->buckets[k] += h.buckets[k];
  into->sum_nanos += h.sum_nanos;
}

// The table's entries, merged by name as exposed (one name may live at
// several addresses, and names that differ only in bytes that are not UTF-8
// become one label value) and sorted, so that every scrape lists each
// series once and in one order.
std::map<LockKey, LockTotals> MergedLocks() {
  std::map<LockKey, LockTotals> locks;
  agent::ForEachLockStats([&](const agent::LockStatsSnapshot& s) {
    // An empty label value is no label at all to Prometheus.
    LockKey key{agent::ValidUtf8(s.overflow                               ? "(other)"
                                 : s.name != nullptr && s.name[0] != '\0' ? s.name
                                                                          : "(unnamed)"),
                s.mode};
    LockTotals& t = locks[key];
    Add(&t.wait, s.wait);
    Add(&t.hold, s.hold);
    t.contentions += s.contentions;
    t.waits += s.waits;
  });
  return locks;
}

// Counters never go backwards. A read of the per-thread cells that gave up
// waiting for a cell being moved (thread_cells.h: a recording thread
// descheduled in the middle of its move, for more than the reader's
// patience) misses that cell's values until the move ends, and Prometheus
// reads any drop as a reset: rate() would spike by the whole counter. So
// each value is written as the most any scrape has read; the next scrape
// reads past it. Bounded: one entry per series, and the series are bounded
// (lock_metrics.h).
struct HighWater {
  std::mutex mu;
  std::map<LockKey, LockTotals> locks;
  uint64_t samples_recorded[agent::kProfileCount] = {};
};

HighWater& TheHighWater() {
  static HighWater* const h = [] {
    auto* high = new HighWater;  // Never destroyed: scrapes may outlive main.
    // A child must not inherit it held by a scrape that does not exist there.
    agent::HoldAcrossFork(&high->mu, agent::ForkRank::kMetrics);
    return high;
  }();
  return *h;
}

void KeepHighest(uint64_t* now, uint64_t* highest) {
  *highest = std::max(*highest, *now);
  *now = *highest;
}

void KeepHighest(HistogramSnapshot* now, HistogramSnapshot* highest) {
  for (int k = 0; k < agent::kBuckets; ++k) KeepHighest(&now->buckets[k], &highest->buckets[k]);
  KeepHighest(&now->sum_nanos, &highest->sum_nanos);
}

std::map<LockKey, LockTotals> MonotonicLocks() {
  std::map<LockKey, LockTotals> locks = MergedLocks();
  HighWater& high = TheHighWater();
  std::lock_guard<std::mutex> guard(high.mu);
  for (auto& [key, t] : locks) {
    LockTotals& h = high.locks[key];
    KeepHighest(&t.wait, &h.wait);
    KeepHighest(&t.hold, &h.hold);
    KeepHighest(&t.contentions, &h.contentions);
    KeepHighest(&t.waits, &h.waits);
  }
  return locks;
}

uint64_t MonotonicSamplesRecorded(agent::ProfileId id) {
  uint64_t now = agent::SamplesRecorded(id);
  HighWater& high = TheHighWater();
  std::lock_guard<std::mutex> guard(high.mu);
  KeepHighest(&now, &high.samples_recorded[int(id)]);
  return now;
}

PromLabels LockLabels(const LockKey& key) {
  PromLabels labels{{"lock", key.lock}};
  if (const char* mode = agent::LockModeName(key.mode)) labels.emplace_back("mode", mode);
  return labels;
}

void WriteHistogram(PromText& text, const std::string& name, const PromLabels& labels,
                    const HistogramSnapshot& h) {
  uint64_t cumulative = 0;
  for (int k = 0; k < agent::kBuckets; ++k) {
    cumulative += h.buckets[k];
    PromLabels with_le = labels;
    with_le.emplace_back("le", k < agent::kFiniteBuckets
                                   ? agent::FormatDouble(double(agent::BucketBoundNanos(k)) / 1e9)
                                   : "+Inf");
    text.Sample(name + "_bucket", with_le, cumulative);
  }
  text.Sample(name + "_sum", labels, double(h.sum_nanos) / 1e9);
  text.Sample(name + "_count", labels, cumulative);
}

void WriteHistograms(PromText& text, const std::map<LockKey, LockTotals>& locks,
                     const std::string& name, const char* help,
                     HistogramSnapshot LockTotals::*histogram) {
  text.Family(name, "histogram", help);
  for (const auto& [key, t] : locks) WriteHistogram(text, name, LockLabels(key), t.*histogram);
}

void WriteLockMetrics(PromText& text) {
  const std::map<LockKey, LockTotals> locks = MonotonicLocks();
  WriteHistograms(
      text, locks, "lockprof_lock_wait_seconds",
      "Time threads waited to acquire each lockprof lock: every contended acquisition, "
      "unsampled (needs the block profile on). lock=\"(unnamed)\": locks without a name; "
      "lock=\"(other)\": locks past the per-lock table's capacity.",
      &LockTotals::wait);
  text.Family("lockprof_lock_contentions_total", "counter",
              "Acquisitions of each lockprof lock that had to wait, counted exactly (equal to "
              "lockprof_lock_wait_seconds_count).");
  for (const auto& [key, t] : locks) {
    text.Sample("lockprof_lock_contentions_total", LockLabels(key), t.contentions);
  }
  text.Family("lockprof_lock_waits_total", "counter",
              "Acquisitions of each lockprof lock that found it taken and waited, whether the "
              "wait ended while spinning or after sleeping, counted exactly (needs the block "
              "profile on). Minus lockprof_lock_contentions_total: the waits that ended while "
              "spinning, which are in no profile. Interposed pthread locks count only the waits "
              "that slept.");
  for (const auto& [key, t] : locks) {
    text.Sample("lockprof_lock_waits_total", LockLabels(key), t.waits);
  }
  WriteHistograms(text, locks, "lockprof_lock_hold_seconds",
                  "Time each lockprof lock was held, from the hold sampler: each sampled critical "
                  "section counts as SetHoldProfileRate() sections, so counts and rates are "
                  "unbiased estimates.",
                  &LockTotals::hold);
}

int64_t ProcessThreads() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  int64_t n = 0;
  while (const dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

// One sample per profile of `value(id)`.
template <typename F>
void PerProfile(PromText& text, const char* name, const char* type, const char* help, F value) {
  text.Family(name, type, help);
  for (int i = 0; i < agent::kProfileCount; ++i) {
    const auto id = agent::ProfileId(i);
    text.Sample(name, {{"profile", agent::ProfileInfoFor(id).name}}, uint64_t(value(id)));
  }
}

void WriteSamplingMetrics(PromText& text) {
  const auto& r = agent::g_rates;
  text.Family("lockprof_mutex_profile_fraction", "gauge",
              "Mutex profile sampling: about 1 in this many contention events is recorded "
              "(0: off).");
  text.Sample("lockprof_mutex_profile_fraction", {},
              uint64_t(r.mutex_fraction.load(std::memory_order_relaxed)));
  text.Family("lockprof_block_profile_rate_seconds", "gauge",
              "Block profile sampling: waits at least this long are always recorded, shorter "
              "ones with probability wait/rate (0: off).");
  text.Sample("lockprof_block_profile_rate_seconds", {},
              double(r.block_rate_ns.load(std::memory_order_relaxed)) / 1e9);
  text.Family("lockprof_hold_profile_rate", "gauge",
              "Hold profile sampling: about 1 in this many acquisitions is timed (0: off).");
  text.Sample("lockprof_hold_profile_rate", {},
              uint64_t(r.hold_rate.load(std::memory_order_relaxed)));
}

void WriteProfileMetrics(PromText& text) {
  PerProfile(text, "lockprof_profile_samples_recorded_total", "counter",
             "Sampled events recorded into each profile.",
             [](agent::ProfileId id) { return MonotonicSamplesRecorded(id); });
  PerProfile(text, "lockprof_profile_stacks", "gauge",
             "Distinct stacks (with their labels) stored in each profile.",
             [](agent::ProfileId id) { return agent::ProfileTable(id).size(); });
  PerProfile(text, "lockprof_profile_samples_dropped_total", "counter",
             "Sampled events whose stack was not in the profile's full table: their values are "
             "kept under lockprof.LostSamplesStackTableFull, their stacks are lost (counted per "
             "event, like lockprof_profile_samples_recorded_total; raise LOCKPROF_MAX_STACKS).",
             [](agent::ProfileId id) { return agent::ProfileTable(id).dropped(); });
  PerProfile(text, "lockprof_profile_memory_bytes", "gauge",
             "Memory allocated for each profile's table.",
             [](agent::ProfileId id) { return agent::ProfileTable(id).memory_bytes(); });
  text.Family("lockprof_lock_metrics_entries", "gauge",
              "Entries in use in the per-lock metrics table (one per lock name and mode).");
  text.Sample("lockprof_lock_metrics_entries", {}, uint64_t(agent::LockStatsEntries()));
  text.Family("lockprof_lock_metrics_memory_bytes", "gauge",
              "Size of the per-lock metrics table (static; pages are committed as used).");
  text.Sample("lockprof_lock_metrics_memory_bytes", {}, uint64_t(agent::LockStatsTableBytes()));
  text.Family("lockprof_label_scopes", "gauge",
              "Distinct ScopedLabels scopes interned (at most LOCKPROF_MAX_LABEL_SETS).");
  text.Sample("lockprof_label_scopes", {}, uint64_t(agent::LabelScopesInterned()));
  text.Family("lockprof_label_scopes_folded_total", "counter",
              "ScopedLabels scopes created after the label table was full that were not seen "
              "before: their samples carry lockprof=\"LabelSetTableFull\" instead of their "
              "labels (raise LOCKPROF_MAX_LABEL_SETS, or use fewer distinct label values).");
  text.Sample("lockprof_label_scopes_folded_total", {}, agent::LabelScopesFolded());
}

void WriteUploadMetrics(PromText& text) {
  text.Family("lockprof_uploads_total", "counter",
              "Profile uploads to Pyroscope by outcome: success; failure (rejected, or retries "
              "exhausted); dropped (queue full, or not sent by the shutdown deadline).");
  for (int i = 0; i < agent::kProfileCount; ++i) {
    const auto id = agent::ProfileId(i);
    for (int r = 0; r < agent::kUploadResults; ++r) {
      const auto result = agent::UploadResult(r);
      text.Sample("lockprof_uploads_total",
                  {{"profile", agent::ProfileInfoFor(id).name},
                   {"result", agent::UploadResultName(result)}},
                  agent::Uploads(id, result));
    }
  }
  text.Family("lockprof_upload_retries_total", "counter",
              "Upload attempts retried after a timeout, a connection error or a 5xx, 408 or 429 "
              "answer.");
  text.Sample("lockprof_upload_retries_total", {}, agent::UploadRetries());
  text.Family("lockprof_upload_labels_changed_total", "counter",
              "Sample labels changed to fit Pyroscope's label rules before an upload, by change: "
              "renamed (a name that is not a Prometheus name), truncated (a value over 2048 "
              "bytes), dropped (an empty or repeated name, or one past 30 names per series).");
  for (int c = 0; c < agent::kLabelChanges; ++c) {
    const auto change = agent::LabelChange(c);
    text.Sample("lockprof_upload_labels_changed_total",
                {{"change", agent::LabelChangeName(change)}}, agent::UploadLabelChanges(change));
  }
  text.Family("lockprof_upload_queue_length", "gauge", "Profiles waiting to be uploaded.");
  text.Sample("lockprof_upload_queue_length", {}, uint64_t(agent::UploadQueueLength()));
}

}  // namespace

void WriteMetrics(std::string* out) {
  PromText text(out);
  WriteLockMetrics(text);
  WriteSamplingMetrics(text);
  WriteProfileMetrics(text);
  text.Family("lockprof_process_threads", "gauge", "Threads in this process.");
  text.Sample("lockprof_process_threads", {}, uint64_t(ProcessThreads()));
  text.Family("lockprof_admin_requests_total", "counter",
              "HTTP requests answered by the lockprof admin endpoint.");
  text.Sample("lockprof_admin_requests_total", {}, agent::AdminRequests());
  WriteUploadMetrics(text);
  text.Family("lockprof_lock_order_inversions_total", "counter",
              "Lock-order cycles (potential deadlocks) found by lock-order checking.");
  text.Sample("lockprof_lock_order_inversions_total", {}, LockOrderInversions());
  text.Family("lockprof_lock_order_dropped_total", "counter",
              "Lock-order edges not checked: the graph's node or edge cap was reached.");
  text.Sample("lockprof_lock_order_dropped_total", {}, agent::LockOrderDropped());
  text.Family("lockprof_lock_stalls_total", "counter",
              "Lock waits that outlasted LOCKPROF_STALL_REPORT_MS (reported once each).");
  text.Sample("lockprof_lock_stalls_total", {}, LockStalls());
  text.Family("lockprof_lock_waits_uncharged_total", "counter",
              "Lock waits the waiter table could not register (its bucket was full): in the "
              "block profile, charged to no release in the mutex profile.");
  text.Sample("lockprof_lock_waits_uncharged_total", {}, agent::UnchargedWaits());
}

}  // namespace lockprof
