// Hand-offs: mutexes unlocked by a thread that did not lock them, told to
// the thread that did, in lockprof's own memory.
//
// glibc lets any thread unlock a normal or adaptive mutex (a mutex used as a
// semaphore, or handed to the thread that finishes the work). The unlocking
// thread has no HeldLocks entry for it, and the locking thread's entry and
// lock record (which only that thread writes) would list it as held for
// good: on the held-locks page and as the stall watchdog's holder, with an
// edge from it into every lock that thread takes later (false inversions),
// and a record slot each until the record is full. The locking thread
// cannot ask the mutex: by its next acquisition the program may have freed
// the mutex and returned its pages (a large allocation is unmapped at once),
// and lockprof runs in other people's processes, so it reads no memory of
// theirs whose lifetime it does not know. The unlocking thread, which is
// handed a mutex the program still owns, tells it instead.
//
// While holders are tracked, such an unlock (of a mutex without a robust or
// priority protocol, by a thread with no entry for it) publishes the
// mutex's address before the real unlock: hand-off number n (g_hand_offs,
// a process-wide count, moved only here) goes into the slot picked by a
// hash of the address as {seq n, lock}, replacing whatever was there. A
// tracked mutex entry keeps the count as its thread read it just after the
// acquisition. Before a tracked acquisition, before a wait checks its
// edges, and before a tracked thread's unlock looks for its entry, a thread
// holding tracked entries loads the count; only if it moved since the
// thread last looked does it read each tracked mutex entry's slot (one per
// entry), and a later number for the same address ends that hold
// (interpose_common.h, ForgetHandedOffMutexes). The unlock fast path of a
// thread with no entries loads the tracking flag, one more load; nothing
// else changes while tracking is off, and the count's line stays shared
// while no hand-off happens.
//
// A later number means this hold was handed off, never the hold before it:
// a hand-off that let this thread in was published before the unlock it
// preceded, so before this thread's acquisition, which then read it in the
// count. Missed (the entry stays listed, as it did before this table, at
// most the record's 16 slots, never a fault): a hand-off published between
// the acquisition and its read of the count (a few dozen instructions), and
// one whose slot another mutex's hand-off took before the holder looked
// (two mutexes whose hashes meet in kHandOffSlots, both handed off within
// that time). Keyed by address rather than a ring of the latest hand-offs,
// a mutex handed off again and again keeps to one slot and pushes no other
// out, and a reader reads one slot per entry. A fork() between a
// publication and its unlock leaves the child's copy of the holder's hold
// published as ended: that thread forgets a mutex it still holds there (it
// then is not listed).
//
// Thread-safety: publications are serialised by a SpinLock; each slot is
// read as a seqlock (seq 0 while it is being written), so a reader never
// takes one address's number for another's, and a slot being written reads
// as empty (its number is above the count the reader loaded: it looks
// again).
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_HAND_OFFS_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_HAND_OFFS_H_

#include <atomic>
#include <cstdint>

namespace lockprof::interpose {

inline constexpr int kHandOffSlotBits = 8;
inline constexpr int kHandOffSlots = 1 << kHandOffSlotBits;  // 4 KiB.

struct HandOffSlot {
  std::atomic<uint64_t> seq{0};  // 0: empty, or being written.
  std::atomic<const void*> lock{nullptr};
};

// The hand-offs published so far, written only by PublishHandOff (so the
// line stays shared while none happen), and the slots.
extern std::atomic<uint64_t> g_hand_offs;
extern HandOffSlot g_hand_off_slots[kHandOffSlots];

// The count, with the slots it covers.
inline uint64_t HandOffCount() { return g_hand_offs.load(std::memory_order_acquire); }

inline HandOffSlot& HandOffSlotOf(const void* lock) {
  const uint64_t h = reinterpret_cast<uintptr_t>(lock) * 0x9e3779b97f4a7c15ull;
  return g_hand_off_slots[h >> (64 - kHandOffSlotBits)];
}

// Publishes an unlock of `lock` by a thread that holds no entry for it.
// Called before the real unlock.
void PublishHandOff(const void* lock);

// True if `lock`'s slot says it was handed off with a number above
// `since` (the count its holder read just after taking it).
inline bool HandedOffSince(const void* lock, uint64_t since) {
  const HandOffSlot& s = HandOffSlotOf(lock);
  const uint64_t seq = s.seq.load(std::memory_order_acquire);
  if (seq <= since) return false;  // Also 0: empty or being written.
  const void* l = s.lock.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  return l == lock && s.seq.load(std::memory_order_relaxed) == seq;
}

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_HAND_OFFS_H_
