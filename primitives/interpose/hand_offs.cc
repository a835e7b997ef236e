#include "lockprof/primitives/interpose/hand_offs.h"

#include "lockprof/primitives/internal/spin_lock.h"

namespace lockprof::interpose {

// The count apart from anything written on every lock call: it is written
// only by hand-offs, and read by each tracked acquisition.
alignas(64) std::atomic<uint64_t> g_hand_offs{0};
alignas(64) HandOffSlot g_hand_off_slots[kHandOffSlots];

namespace {

internal::SpinLock g_publish_lock;

// In a fork()ed child's first publication: a parent thread may have been
// between its slot's write and the count's, and the child's next number
// must be above every number in a slot (a slot that read n, then 0, then n
// again for another address would pass the seqlock's check). The slots'
// addresses stay: the parent's hand-offs before the fork ended holds that
// the child's copy of the forking thread may still list.
void RenumberAfterFork() {
  uint64_t top = g_hand_offs.load(std::memory_order_relaxed);
  for (HandOffSlot& s : g_hand_off_slots) {
    const uint64_t seq = s.seq.load(std::memory_order_relaxed);
    if (seq > top) top = seq;
  }
  g_hand_offs.store(top, std::memory_order_release);
}

}  // namespace

void PublishHandOff(const void* lock) {
  if (g_publish_lock.Lock()) RenumberAfterFork();
  const uint64_t seq = g_hand_offs.load(std::memory_order_relaxed) + 1;
  HandOffSlot& s = HandOffSlotOf(lock);
  s.seq.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);  // 0 before the new address.
  s.lock.store(lock, std::memory_order_relaxed);
  s.seq.store(seq, std::memory_order_release);
  // After the slot: a reader that loads this count finds the slot written.
  g_hand_offs.store(seq, std::memory_order_release);
  g_publish_lock.Unlock();
}

}  // namespace lockprof::interpose
