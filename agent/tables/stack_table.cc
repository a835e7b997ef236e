#include "lockprof/agent/tables/stack_table.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#include "lockprof/agent/base/env.h"
#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/tables/thread_cells.h"

namespace lockprof::agent {

namespace {

// Slot states in Entry::tag: empty, being filled, or published (a key hash
// with the low bits forced so that it is neither of the first two).
constexpr uint64_t kEmpty = 0;
constexpr uint64_t kFilling = 1;
constexpr uint64_t kPublishedBit = 2;
// Linear probing stops after this many slots; the key then goes to overflow.
constexpr size_t kMaxProbes = 64;

// Every sampled event hashes its key, a stack of ~20 frames: the hash is
// most of the cost of adding to a key that exists. Each frame costs one xor
// and one multiply (by an odd constant: a bijection, so no step loses what
// came before), on two independent lanes whose multiplies overlap; the
// finaliser of MurmurHash3 then spreads every bit over the whole word,
// high bits included, which pick the slot (SlotOf). A chain of mixing
// steps per frame, and a division for the slot, took 2.4 times as long
// (BENCHMARKS.md, "Hashing a sample's key").
constexpr uint64_t kOddA = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kOddB = 0xC2B2AE3D27D4EB4Full;

inline uint64_t Finalize(uint64_t h) {
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 33);
}

uint64_t HashKey(const StackTrace& stack, const EventTags& tags, const LabelSet* labels) {
  uint64_t a = 0x243F6A8885A308D3ull ^ uint64_t(stack.depth);
  uint64_t b = 0x13198A2E03707344ull;
  int i = 0;
  for (; i + 1 < stack.depth; i += 2) {
    a = (a ^ stack.pcs[i]) * kOddA;
    b = (b ^ stack.pcs[i + 1]) * kOddB;
  }
  if (i < stack.depth) a = (a ^ stack.pcs[i]) * kOddA;
  b = (b ^ reinterpret_cast<uintptr_t>(LockNameId(tags))) * kOddB;
  a = (a ^ ((uint64_t(tags.mode) << 32) ^ uint32_t(tags.shard))) * kOddA;
  b = (b ^ reinterpret_cast<uintptr_t>(labels)) * kOddB;
  return Finalize(a ^ (b << 31 | b >> 33)) | kPublishedBit;
}

// The first slot to probe for `hash`: its high bits scaled to [0, capacity)
// (a multiply, not a 64-bit division).
inline size_t SlotOf(uint64_t hash, size_t capacity) {
  return size_t((static_cast<unsigned __int128>(hash) * capacity) >> 64);
}

// The name is compared by content too: after a dlclose(), another library
// may put another name (and code) at the same addresses.
bool SameKey(const SampleKey& k, const StackTrace& stack, const EventTags& tags,
             const LabelSet* labels) {
  if (k.depth != stack.depth || k.lock_id != LockNameId(tags) || k.mode != tags.mode ||
      k.shard != tags.shard || k.labels != labels) {
    return false;
  }
  // A loop, not memcmp: the call cost as much as the compare of a dozen
  // frames (IsEntryOf runs this for every hold sample at hold rate 1).
  for (int i = 0; i < stack.depth; ++i) {
    if (k.pcs[i] != stack.pcs[i]) return false;
  }
  return tags.lock == nullptr || SameKeptName(k.lock_name, tags.lock, kMaxLockName);
}

// LOCKPROF_MAX_STACKS, read at start (env.h): 0 until then, or if unset or
// malformed.
std::atomic<int64_t> g_env_capacity{0};
[[maybe_unused]] const bool g_env_read =
    ReadEnvIntAtStart("LOCKPROF_MAX_STACKS", 16, StackTable::kMaxCapacity, &g_env_capacity);

size_t ConfiguredCapacity(size_t requested) {
  if (requested != 0) return requested;
  const int64_t env = g_env_capacity.load(std::memory_order_relaxed);
  return env != 0 ? size_t(env) : StackTable::kDefaultCapacity;
}

}  // namespace

struct StackTable::Entry {
  std::atomic<uint64_t> tag;
  SampleKey key;
  std::atomic<int64_t> values[2];
};

namespace {

// How long recording goes without a table whose slots could not be mapped
// before it tries again.
constexpr int64_t kMapRetryNanos = 1000000000;

// A cell's values 0 and 1 are the entry's.
void MoveToEntry(void* target, const int64_t* values) {
  auto* values_of_entry = static_cast<std::atomic<int64_t>*>(target);
  for (int k = 0; k < 2; ++k) {
    if (values[k] != 0) values_of_entry[k].fetch_add(values[k], std::memory_order_relaxed);
  }
}

}  // namespace

StackTable::Entry* StackTable::Slots() {
  Entry* slots = slots_.load(std::memory_order_acquire);
  if (__builtin_expect(slots != nullptr, 1)) return slots;
  // First event: map the slots, zeroed, committed only when touched. Mapped,
  // not allocated: the first event may be inside the application's own
  // malloc (an allocator whose pthread mutexes the interposer records),
  // where calling malloc would wait for a mutex this thread holds. Racing
  // first events each map; one wins and the others unmap theirs. The
  // capacity is fixed first, so that whoever sees the slots sees it too
  // (published after them, a fork() between the two left a child whose
  // every lookup waited for a capacity no thread of its would store).
  const int64_t now_ns = MonotonicNanos();
  if (now_ns < map_retry_ns_.load(std::memory_order_relaxed)) return nullptr;
  size_t capacity = ConfiguredCapacity(requested_capacity_);
  size_t fixed = 0;
  if (!capacity_.compare_exchange_strong(fixed, capacity, std::memory_order_acq_rel)) {
    capacity = fixed;
  }
  const size_t bytes = BytesFor(capacity);
  void* fresh = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fresh == MAP_FAILED) {
    map_retry_ns_.store(now_ns + kMapRetryNanos, std::memory_order_relaxed);
    return nullptr;
  }
  if (slots_.compare_exchange_strong(slots, static_cast<Entry*>(fresh),
                                     std::memory_order_acq_rel)) {
    return static_cast<Entry*>(fresh);
  }
  munmap(fresh, bytes);
  return slots;
}

StackTable::~StackTable() {
  if (Entry* slots = slots_.load(std::memory_order_acquire); slots != nullptr) {
    munmap(slots, memory_bytes());
  }
}

StackTable::EntryRef StackTable::Lookup(const StackTrace& stack, const EventTags& tags,
                                        const LabelSet* labels) {
  Entry* slots = Slots();
  if (slots == nullptr) return {nullptr, true};  // Lost, and counted so by AddTo.
  // Fixed before slots_ was published (Slots()).
  const size_t capacity = capacity_.load(std::memory_order_acquire);
  const uint64_t hash = HashKey(stack, tags, labels);
  Entry* target = &slots[capacity];  // The overflow entry, unless we find better.
  size_t i = SlotOf(hash, capacity);
  for (size_t probe = 0; probe < kMaxProbes; ++probe, i = (i + 1 == capacity ? 0 : i + 1)) {
    Entry& e = slots[i];
    uint64_t tag = e.tag.load(std::memory_order_acquire);
    if (tag == hash && SameKey(e.key, stack, tags, labels)) {
      target = &e;
      break;
    }
    if (tag != kEmpty) continue;  // Another key, or one being filled: move on.
    // Keep the table at most 7/8 full so that probe sequences stay short.
    if (used_.load(std::memory_order_relaxed) >= capacity - capacity / 8) break;
    if (!e.tag.compare_exchange_strong(tag, kFilling, std::memory_order_acquire)) {
      // Lost the slot. If the winner is storing our key, we may store a
      // duplicate further on; readers merge duplicates by key.
      continue;
    }
    // Listed for readers, who so visit only the slots in use (a table of a
    // million slots is mostly untouched pages, which a scan would commit).
    const size_t position = used_.fetch_add(1, std::memory_order_relaxed);
    ListOf(slots, capacity)[position].store(uint32_t(i + 1), std::memory_order_relaxed);
    std::memcpy(e.key.pcs, stack.pcs, sizeof(uintptr_t) * size_t(stack.depth));
    e.key.depth = stack.depth;
    e.key.mode = tags.mode;
    e.key.shard = tags.shard;
    e.key.lock_id = LockNameId(tags);
    e.key.lock = nullptr;
    if (tags.lock != nullptr) {
      // Copied now, while the recording thread's code (and so its name) is
      // surely mapped: readers must never dereference the caller's pointer.
      KeepName(tags.lock, e.key.lock_name, kMaxLockName);
      e.key.lock = e.key.lock_name;
    }
    e.key.labels = labels;
    e.tag.store(hash, std::memory_order_release);
    target = &e;
    break;
  }
  return {target, target == &slots[capacity]};
}

bool StackTable::IsEntryOf(EntryRef ref, const StackTrace& stack, const EventTags& tags,
                           const LabelSet* labels) {
  return ref.entry != nullptr && !ref.overflow && SameKey(ref.entry->key, stack, tags, labels);
}

void StackTable::AddTo(EntryRef ref, int64_t v0, int64_t v1) {
  if (ref.overflow) dropped_.fetch_add(1, std::memory_order_relaxed);
  if (ref.entry == nullptr) return;
  if (values_ == Values::kPerThreadCells) {
    AddToCell(ref.entry->values, MoveToEntry, 0, v0, 1, v1);
    return;
  }
  ref.entry->values[0].fetch_add(v0, std::memory_order_relaxed);
  ref.entry->values[1].fetch_add(v1, std::memory_order_relaxed);
}

void StackTable::Snapshot(std::vector<SlotValues>* out) const {
  Entry* slots = LoadSlots();
  size_t capacity = capacity_.load(std::memory_order_acquire);
  if (slots == nullptr || capacity == 0) return;
  const size_t first = out->size();
  // The slots in use, in slot order, then the overflow slot. A slot claimed
  // after this is read in the next snapshot; one whose index is not written
  // yet, or whose key is still being filled, is skipped.
  std::vector<size_t> in_use;
  const std::atomic<uint32_t>* list = ListOf(slots, capacity);
  const size_t listed = std::min(used_.load(std::memory_order_acquire), capacity);
  in_use.reserve(listed + 1);
  for (size_t p = 0; p < listed; ++p) {
    if (const uint32_t slot = list[p].load(std::memory_order_relaxed); slot != 0) {
      in_use.push_back(slot - 1);
    }
  }
  std::sort(in_use.begin(), in_use.end());
  in_use.push_back(capacity);
  auto read_entries = [&] {
    out->resize(first);
    for (const size_t i : in_use) {
      const Entry& e = slots[i];
      const bool overflow = i == capacity;
      if (!overflow && e.tag.load(std::memory_order_acquire) < kPublishedBit) continue;
      out->push_back(SlotValues{i,
                                &e.key,
                                overflow,
                                {e.values[0].load(std::memory_order_relaxed),
                                 e.values[1].load(std::memory_order_relaxed)}});
    }
  };
  if (values_ == Values::kShared) {
    read_entries();
  } else {
    std::vector<CellValues> cells;
    ReadWithCells(&slots[0], &slots[capacity + 1], read_entries, &cells);
    // out is in slot order from `first` on.
    for (const CellValues& c : cells) {
      const size_t slot =
          size_t(reinterpret_cast<const Entry*>(reinterpret_cast<const char*>(c.target) -
                                                offsetof(Entry, values)) -
                 slots);
      auto it = std::lower_bound(out->begin() + std::ptrdiff_t(first), out->end(), slot,
                                 [](const SlotValues& v, size_t s) { return v.slot < s; });
      // A cell can be bound to an entry that this read saw unpublished: its
      // values join the entry's in the next read.
      if (it == out->end() || it->slot != slot) continue;
      it->values[0] = WrappingAdd(it->values[0], c.values[0]);
      it->values[1] = WrappingAdd(it->values[1], c.values[1]);
    }
  }
  // The overflow entry shows only once something went there.
  if (out->size() > first && out->back().overflow && out->back().values[0] == 0 &&
      out->back().values[1] == 0) {
    out->pop_back();
  }
}

size_t StackTable::slot_count() const {
  if (LoadSlots() == nullptr) return 0;
  return capacity_.load(std::memory_order_acquire) + 1;
}

size_t StackTable::memory_bytes() const {
  if (LoadSlots() == nullptr) return 0;
  return BytesFor(capacity_.load(std::memory_order_acquire));
}

size_t StackTable::BytesFor(size_t capacity) {
  // The slots, the overflow slot, and the list of slots in use.
  return (capacity + 1) * sizeof(Entry) + capacity * sizeof(std::atomic<uint32_t>);
}

std::atomic<uint32_t>* StackTable::ListOf(Entry* slots, size_t capacity) {
  return reinterpret_cast<std::atomic<uint32_t>*>(slots + capacity + 1);
}

}  // namespace lockprof::agent
