// StackTable: the fixed-capacity, lock-free aggregation table behind each
// profile.
//
// Recording threads add (count, value) pairs to the entry for their sample
// key (stack + tags + user labels) with atomic adds; a new key claims an empty
// slot with one CAS. Readers (profile builders, delta scrapers, the uploader)
// walk the slots without taking any lock, so a scrape can never make an
// application thread wait, and recording never allocates: the slots are
// allocated once, on first use.
//
// Memory is bounded by the capacity (LOCKPROF_MAX_STACKS, default 4096 keys
// per profile, at most kMaxCapacity, ~380 bytes each, touched lazily:
// readers visit only the slots in use, so an empty table of a million slots
// costs address space, not memory). Once the table is full, new
// keys are folded into one overflow entry, reported in profiles as
// "lockprof.LostSamplesStackTableFull", and each event folded there is
// counted as dropped; keys already present keep accumulating, so no value
// recorded is lost, only the stacks of the folded events.
//
// Entries are never removed or moved, so a slot index identifies a key for
// the life of the process: delta profiles keep their previous values in
// arrays indexed by slot.
//
// A table that lives as long as the process (the agent's) may keep its
// values in per-thread cells (thread_cells.h): a recording thread then adds
// to a cell of its own instead of the entry's shared counters, and
// Snapshot adds the cells in.
//
// A key's values wrap around at 2^64 rather than overflow (WrappingAdd,
// thread_cells.h): deltas stay exact across a wrap; a cumulative profile
// read then shows the wrapped value.
#ifndef LOCKPROF_AGENT_TABLES_STACK_TABLE_H_
#define LOCKPROF_AGENT_TABLES_STACK_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/stack_trace.h"

namespace lockprof::agent {

struct SampleKey {
  uintptr_t pcs[kMaxStackDepth];
  int32_t depth;
  LockMode mode;
  int32_t shard;
  // The lock's name, readable for the life of the process: it points at
  // lock_name, the table's own copy, so that a name in a dlclose()d library
  // or a freed string never dangles. nullptr when the lock has none.
  const char* lock;
  // The address of the lock's own name (LockNameId, event_tags.h): part of
  // the key's identity, compared, never dereferenced.
  const void* lock_id;
  const LabelSet* labels;
  char lock_name[kMaxLockName];
};

// One slot's values as read by a reader.
struct SlotValues {
  size_t slot;
  const SampleKey* key;  // Stable for the life of the process.
  bool overflow;         // The overflow entry (key is empty).
  int64_t values[2];
};

class StackTable {
 public:
  static constexpr size_t kDefaultCapacity = 4096;
  // LOCKPROF_MAX_STACKS's largest: about 400 MiB of address space a table,
  // and a delta's bookkeeping of 16 MiB (indexed by slot).
  static constexpr size_t kMaxCapacity = size_t{1} << 20;

  // Whether values go through per-thread cells. Only for a table that is
  // never destroyed: cells stay bound to its entries for good.
  enum class Values { kShared, kPerThreadCells };

  // Capacity LOCKPROF_MAX_STACKS, or kDefaultCapacity.
  constexpr StackTable() = default;
  explicit constexpr StackTable(Values values) : values_(values) {}
  explicit constexpr StackTable(size_t capacity, Values values = Values::kShared)
      : requested_capacity_(capacity), values_(values) {}
  StackTable(const StackTable&) = delete;
  StackTable& operator=(const StackTable&) = delete;
  // Frees the slots. The agent's own tables are never destroyed (threads may
  // record during static destruction); this is for tables owned by tests
  // and tools.
  ~StackTable();

  // Adds v0 and v1 to the entry for (stack, tags, labels). Lock-free; never
  // allocates after the first call (of the table, and of the thread when
  // values go through cells).
  void Add(const StackTrace& stack, const EventTags& tags, const LabelSet* labels, int64_t v0,
           int64_t v1) {
    AddTo(Lookup(stack, tags, labels), v0, v1);
  }

  // Add in two halves, for a caller that adds to one key again and again
  // and remembers its entry (record.cc, the hold profile's per-thread
  // memo): entries never move, so a reference stays valid for the life of
  // the table, and of the process for the agent's own tables. Lookup finds
  // (or claims) the key's entry, the overflow entry when the table is full,
  // or none when the slots could not be mapped (AddTo then adds nothing, and
  // counts the event dropped).
  // IsEntryOf says whether a remembered reference is the entry of a key, by
  // the key the entry holds (never for the overflow entry, which holds
  // none): what Lookup would compare, without the hash and the probe.
  struct Entry;
  struct EntryRef {
    Entry* entry = nullptr;
    bool overflow = false;  // Each add to it counts as dropped.
  };
  EntryRef Lookup(const StackTrace& stack, const EventTags& tags, const LabelSet* labels);
  static bool IsEntryOf(EntryRef ref, const StackTrace& stack, const EventTags& tags,
                        const LabelSet* labels);
  void AddTo(EntryRef ref, int64_t v0, int64_t v1);

  // Appends every non-empty slot's current values to *out.
  void Snapshot(std::vector<SlotValues>* out) const;

  // Slots (including the overflow slot): indices in SlotValues are < this.
  size_t slot_count() const;
  // Events (Add calls) whose key was not in the table when it was full, and
  // went to the overflow entry, or that found no slots (they could not be
  // mapped: the event is lost): a key seen again counts again, so this is a
  // count of samples whose stack was lost, not of distinct keys.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Keys stored (not counting the overflow entry).
  size_t size() const { return used_.load(std::memory_order_relaxed); }
  // Bytes allocated for slots (0 until first use).
  size_t memory_bytes() const;

 private:
  static size_t BytesFor(size_t capacity);
  // The mapping's tail after the slots: the index + 1 of each slot in use,
  // in the order they were claimed (0: being written).
  static std::atomic<uint32_t>* ListOf(Entry* slots, size_t capacity);
  Entry* Slots();
  Entry* LoadSlots() const { return slots_.load(std::memory_order_acquire); }

  size_t requested_capacity_ = 0;  // 0: LOCKPROF_MAX_STACKS or the default.
  Values values_ = Values::kShared;
  std::atomic<Entry*> slots_{nullptr};
  // Fixed by the first event, before it publishes slots_ (Slots()).
  std::atomic<size_t> capacity_{0};
  std::atomic<size_t> used_{0};
  std::atomic<uint64_t> dropped_{0};
  // After the slots could not be mapped (RLIMIT_AS, overcommit refused): no
  // new attempt before this time (MonotonicNanos), so that the
  // recording threads that find no slots do not each pay a failing mmap of
  // the whole table.
  std::atomic<int64_t> map_retry_ns_{0};
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_TABLES_STACK_TABLE_H_
