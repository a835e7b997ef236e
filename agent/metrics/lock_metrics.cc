#include "lockprof/agent/metrics/lock_metrics.h"

namespace lockprof::agent {

namespace {

constexpr size_t kCapacity = 256;  // A power of two.
constexpr size_t kMaxProbes = 32;
constexpr int kModes = 3;

// Own cache line per entry: two hot locks never share one.
struct alignas(64) Entry {
  // 0: empty. Else EncodeKey(name, mode), published by one CAS: a reader
  // that sees it sees a complete key (the counters start at zero anyway).
  std::atomic<uint64_t> key;
  AtomicHistogram wait;
  AtomicHistogram hold;
  std::atomic<uint64_t> contentions;
};

// Static storage: zero-initialised before any code runs, usable from other
// files' static initialisers, never freed.
Entry g_entries[kCapacity];
Entry g_overflow[kModes];
std::atomic<size_t> g_used{0};

inline uint64_t EncodeKey(const char* name, LockMode mode) {
  return ((uint64_t(reinterpret_cast<uintptr_t>(name)) << 2) | uint64_t(mode)) + 1;
}

inline uint64_t Hash(uint64_t key) {
  key ^= key >> 33;
  key *= 0xFF51AFD7ED558CCDull;
  key ^= key >> 33;
  key *= 0xC4CEB9FE1A85EC53ull;
  return key ^ (key >> 33);
}

Entry* Find(const EventTags& tags) {
  const uint64_t key = EncodeKey(tags.lock, tags.mode);
  const size_t start = size_t(Hash(key));
  for (size_t i = 0; i < kMaxProbes; ++i) {
    Entry* e = &g_entries[(start + i) & (kCapacity - 1)];
    uint64_t seen = e->key.load(std::memory_order_acquire);
    if (seen == 0) {
      if (e->key.compare_exchange_strong(seen, key, std::memory_order_acq_rel)) {
        g_used.fetch_add(1, std::memory_order_relaxed);
        return e;
      }
      // Lost the race for this entry: `seen` now holds the winner's key.
    }
    if (seen == key) return e;
  }
  return &g_overflow[int(tags.mode) % kModes];
}

void Snapshot(const Entry& e, LockStatsSnapshot* out) {
  out->wait = {};
  out->wait.Add(e.wait);
  out->hold = {};
  out->hold.Add(e.hold);
  out->contentions = e.contentions.load(std::memory_order_relaxed);
}

bool Empty(const LockStatsSnapshot& s) {
  return s.wait.count() == 0 && s.hold.count() == 0 && s.contentions == 0;
}

}  // namespace

int BucketIndex(int64_t nanos) {
  if (nanos <= BucketBoundNanos(0)) return 0;
  // value <= 1000 * 2^k  <=>  ceil(value / 1000) <= 2^k.
  const uint64_t units = (uint64_t(nanos) + 999) / 1000;
  const int k = 64 - __builtin_clzll(units - 1);
  return k < kFiniteBuckets ? k : kFiniteBuckets;
}

void AtomicHistogram::Observe(int64_t nanos, uint64_t weight) {
  if (nanos < 0) nanos = 0;
  buckets[BucketIndex(nanos)].fetch_add(weight, std::memory_order_relaxed);
  sum_nanos.fetch_add(uint64_t(nanos) * weight, std::memory_order_relaxed);
}

uint64_t HistogramSnapshot::count() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

void HistogramSnapshot::Add(const AtomicHistogram& h) {
  for (int k = 0; k < kBuckets; ++k) buckets[k] += h.buckets[k].load(std::memory_order_relaxed);
  sum_nanos += h.sum_nanos.load(std::memory_order_relaxed);
}

void ObserveLockWait(const EventTags& tags, int64_t wait_ns) {
  Entry* e = Find(tags);
  e->wait.Observe(wait_ns, 1);
  e->contentions.fetch_add(1, std::memory_order_relaxed);
}

void ObserveLockHold(const EventTags& tags, int64_t hold_ns, uint64_t weight) {
  Find(tags)->hold.Observe(hold_ns, weight);
}

void ForEachLockStats(const std::function<void(const LockStatsSnapshot&)>& fn) {
  LockStatsSnapshot s;
  for (const Entry& e : g_entries) {
    const uint64_t key = e.key.load(std::memory_order_acquire);
    if (key == 0) continue;
    s.name = reinterpret_cast<const char*>(uintptr_t((key - 1) >> 2));
    s.mode = LockMode((key - 1) & 3);
    s.overflow = false;
    Snapshot(e, &s);
    fn(s);
  }
  for (int m = 0; m < kModes; ++m) {
    Snapshot(g_overflow[m], &s);
    if (Empty(s)) continue;
    s.name = nullptr;
    s.mode = LockMode(m);
    s.overflow = true;
    fn(s);
  }
}

size_t LockStatsEntries() {
  size_t n = g_used.load(std::memory_order_relaxed);
  LockStatsSnapshot s;
  for (const Entry& e : g_overflow) {
    Snapshot(e, &s);
    n += !Empty(s);
  }
  return n;
}

size_t LockStatsTableBytes() { return sizeof(g_entries) + sizeof(g_overflow); }

}  // namespace lockprof::agent
