#include "lockprof/agent/metrics/lock_metrics.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/tables/stack_table.h"
#include "lockprof/agent/tables/thread_cells.h"

namespace lockprof::agent {

namespace {

constexpr size_t kCapacity = 256;  // A power of two.
constexpr size_t kMaxProbes = 32;
constexpr int kModes = 3;

// Entry states in Entry::tag: empty, being filled, or published (a hash of
// the key with the low bits forced so that it is neither of the first two).
constexpr uint64_t kEmpty = 0;
constexpr uint64_t kFilling = 1;
constexpr uint64_t kPublishedBit = 2;

// Own cache line per entry: two hot locks never share one.
struct alignas(64) Entry {
  // kEmpty, kFilling, or the key's hash, published (release) once the key
  // below is written: a reader that sees it sees a complete key (the
  // counters start at zero anyway).
  std::atomic<uint64_t> tag;
  LockMode mode;
  bool named;
  // The table's own copy of the name, so that a name in a dlclose()d
  // library or a freed string is never read after the event that brought
  // it: the entry is found by content, and readers see only this copy.
  char name[kMaxLockName];
  // Recording threads add to these through their cells (thread_cells.h);
  // readers add the cells in. A contention is a wait: wait's count.
  AtomicHistogram wait;
  AtomicHistogram hold;
  // Waits begun. Through cells too: on the waiter's time, but a shared add
  // would move the line between the cores that take turns waiting.
  std::atomic<uint64_t> waits;
};

// Static storage: zero-initialised before any code runs, usable from other
// files' static initialisers, never freed. The overflow entries ("(other)")
// follow the table, so that one address range holds every cell's target.
Entry g_storage[kCapacity + kModes];
Entry* const g_entries = g_storage;
Entry* const g_overflow = g_storage + kCapacity;
std::atomic<size_t> g_used{0};

// A cell's values for a histogram: its buckets, then its sum.
static_assert(kBuckets + 1 <= kCellValues, "a histogram must fit in a cell");

void MoveToHistogram(void* target, const int64_t* values) {
  auto* h = static_cast<AtomicHistogram*>(target);
  for (int k = 0; k < kBuckets; ++k) {
    if (values[k] != 0) h->buckets[k].fetch_add(uint64_t(values[k]), std::memory_order_relaxed);
  }
  if (values[kBuckets] != 0) {
    h->sum_nanos.fetch_add(uint64_t(values[kBuckets]), std::memory_order_relaxed);
  }
}

void MoveToCounter(void* target, const int64_t* values) {
  if (values[0] != 0) {
    static_cast<std::atomic<uint64_t>*>(target)->fetch_add(uint64_t(values[0]),
                                                           std::memory_order_relaxed);
  }
}

void Observe(AtomicHistogram* h, int64_t nanos, uint64_t weight) {
  if (nanos < 0) nanos = 0;
  AddToCell(h, MoveToHistogram, BucketIndex(nanos), int64_t(weight), kBuckets,
            int64_t(uint64_t(nanos) * weight));
}

// FNV-1a over the (truncated) name and the mode; nullptr hashes apart from "".
uint64_t HashKey(const char* name, LockMode mode) {
  uint64_t h = 0xCBF29CE484222325ull ^ (uint64_t(mode) << 8) ^ (name == nullptr ? 0x5A : 0);
  if (name != nullptr) {
    const size_t kept = KeptNameBytes(name, kMaxLockName);
    for (size_t i = 0; i < kept; ++i) {
      h = (h ^ uint8_t(name[i])) * 0x100000001B3ull;
    }
  }
  h ^= h >> 33;
  return h | kPublishedBit;
}

bool SameKey(const Entry& e, const char* name, LockMode mode) {
  if (e.mode != mode || e.named != (name != nullptr)) return false;
  return name == nullptr || SameKeptName(e.name, name, kMaxLockName);
}

Entry* Find(const EventTags& tags) {
  const uint64_t hash = HashKey(tags.lock, tags.mode);
  const size_t start = size_t(hash >> 2);
  for (size_t i = 0; i < kMaxProbes; ++i) {
    Entry* e = &g_entries[(start + i) & (kCapacity - 1)];
    uint64_t seen = e->tag.load(std::memory_order_acquire);
    if (seen == hash && SameKey(*e, tags.lock, tags.mode)) return e;
    // Another key, or one being filled (maybe ours: then we may claim a
    // duplicate further on, which readers merge by name).
    if (seen != kEmpty) continue;
    if (!e->tag.compare_exchange_strong(seen, kFilling, std::memory_order_acquire)) continue;
    e->mode = tags.mode;
    e->named = tags.lock != nullptr;
    // Copied now, while the recording thread's lock (and so its name) is
    // surely alive. The entry is zero-filled: the copy stays terminated.
    if (e->named) KeepName(tags.lock, e->name, kMaxLockName);
    g_used.fetch_add(1, std::memory_order_relaxed);
    e->tag.store(hash, std::memory_order_release);
    return e;
  }
  return &g_overflow[int(tags.mode) % kModes];
}

// The histograms of the entries `which` (indices into g_storage,
// ascending), with the cells added in.
struct Histograms {
  HistogramSnapshot wait;
  HistogramSnapshot hold;
  uint64_t waits = 0;
};

std::vector<Histograms> Read(const std::vector<size_t>& which) {
  std::vector<Histograms> out(which.size());
  std::vector<CellValues> cells;
  ReadWithCells(
      &g_storage[0], &g_storage[kCapacity + kModes],
      [&] {
        for (size_t n = 0; n < which.size(); ++n) {
          out[n] = {};
          out[n].wait.Add(g_storage[which[n]].wait);
          out[n].hold.Add(g_storage[which[n]].hold);
          out[n].waits = g_storage[which[n]].waits.load(std::memory_order_relaxed);
        }
      },
      &cells);
  for (const CellValues& c : cells) {
    const auto offset =
        size_t(static_cast<const char*>(c.target) - reinterpret_cast<const char*>(g_storage));
    const auto it = std::lower_bound(which.begin(), which.end(), offset / sizeof(Entry));
    if (it == which.end() || *it != offset / sizeof(Entry)) continue;
    Histograms& h = out[size_t(it - which.begin())];
    if (offset % sizeof(Entry) == offsetof(Entry, waits)) {
      h.waits += uint64_t(c.values[0]);
      continue;
    }
    HistogramSnapshot* to = offset % sizeof(Entry) == offsetof(Entry, wait) ? &h.wait : &h.hold;
    for (int k = 0; k < kBuckets; ++k) to->buckets[k] += uint64_t(c.values[k]);
    to->sum_nanos += uint64_t(c.values[kBuckets]);
  }
  return out;
}

std::vector<size_t> OverflowEntries() {
  std::vector<size_t> which;
  for (size_t m = 0; m < kModes; ++m) which.push_back(kCapacity + m);
  return which;
}

void Fill(const Histograms& h, LockStatsSnapshot* out) {
  out->wait = h.wait;
  out->hold = h.hold;
  out->contentions = h.wait.count();
  out->waits = h.waits;
}

bool Empty(const LockStatsSnapshot& s) {
  return s.wait.count() == 0 && s.hold.count() == 0 && s.contentions == 0 && s.waits == 0;
}

}  // namespace

int BucketIndex(int64_t nanos) {
  if (nanos <= BucketBoundNanos(0)) return 0;
  // value <= 1000 * 2^k  <=>  ceil(value / 1000) <= 2^k.
  const uint64_t units = (uint64_t(nanos) + 999) / 1000;
  const int k = 64 - __builtin_clzll(units - 1);
  return k < kFiniteBuckets ? k : kFiniteBuckets;
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
  Observe(&Find(tags)->wait, wait_ns, 1);
}

void ObserveLockWaitStart(const EventTags& tags) {
  AddToCell(&Find(tags)->waits, MoveToCounter, 0, 1, 1, 0);
}

void ObserveLockHold(const EventTags& tags, int64_t hold_ns, uint64_t weight) {
  Observe(&Find(tags)->hold, hold_ns, weight);
}

void ForEachLockStats(const std::function<void(const LockStatsSnapshot&)>& fn) {
  std::vector<size_t> which;
  for (size_t i = 0; i < kCapacity; ++i) {
    if (g_entries[i].tag.load(std::memory_order_acquire) >= kPublishedBit) which.push_back(i);
  }
  const std::vector<size_t> overflow = OverflowEntries();
  which.insert(which.end(), overflow.begin(), overflow.end());
  const std::vector<Histograms> all = Read(which);
  LockStatsSnapshot s;
  for (size_t n = 0; n < which.size(); ++n) {
    const Entry& e = g_storage[which[n]];
    s.overflow = which[n] >= kCapacity;
    Fill(all[n], &s);
    if (s.overflow && Empty(s)) continue;
    s.name = e.named && !s.overflow ? e.name : nullptr;
    s.mode = s.overflow ? LockMode(which[n] - kCapacity) : e.mode;
    fn(s);
  }
}

size_t LockStatsEntries() {
  size_t n = g_used.load(std::memory_order_relaxed);
  LockStatsSnapshot s;
  for (const Histograms& h : Read(OverflowEntries())) {
    Fill(h, &s);
    n += !Empty(s);
  }
  return n;
}

size_t LockStatsTableBytes() { return sizeof(g_storage); }

}  // namespace lockprof::agent
