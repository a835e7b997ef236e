// SnapshotSlot<T>: a std::shared_ptr<const T> that readers copy without a
// lock, for lockprof::CowPtr.
//
// C++17 has no lock-free atomic shared_ptr: std::atomic_load(&shared_ptr)
// takes one of a few global mutexes in libstdc++. The slot instead uses
// differential reference counting. The published value lives in a Node;
// one 64-bit word holds the Node's address (low 48 bits) and the number of
// readers that may be dereferencing it right now (high 16 bits).
//
//  * A reader adds one to the count (fetch_add), which pins the Node: no
//    writer frees a Node whose readers it has not accounted for. It copies
//    the Node's shared_ptr, then subtracts its one back with a CAS, provided
//    the word still names the same Node.
//  * A writer swaps in a new Node (exchange) and learns how many readers
//    still had the old one pinned; it adds that number to the old Node's
//    `pending`. Each of those readers, finding the word changed, subtracts
//    one from `pending` instead. Whoever brings `pending` to zero deletes
//    the Node. A Node is never published twice, so a reader that finds its
//    Node's address in the word knows its pin is still counted there.
//
// Readers never wait for anyone: a reader's CAS fails only when another
// reader or a writer changed the word, and then it retries or takes the
// `pending` route. Limits: Node addresses must fit in 48 bits (true for
// user-space heap addresses on x86-64 and AArch64 Linux), and at most 65535
// readers may be between their two steps at once; either violation aborts.
// A heap that tags the top byte of its pointers (AArch64 with memory
// tagging, HWASan, x86 LAM) is fine: Nodes are 256-byte aligned, and the
// word keeps the tag in the address's low byte (PackAddress), so that a
// Node is reached through the very pointer `new` returned.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_SNAPSHOT_SLOT_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_SNAPSHOT_SLOT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

#include "lockprof/primitives/internal/fatal.h"

namespace lockprof::internal {

template <typename T>
class SnapshotSlot {
 public:
  explicit SnapshotSlot(std::shared_ptr<const T> initial) { Store(std::move(initial)); }
  // Requires that no Load or Store runs concurrently.
  ~SnapshotSlot() { delete NodeOf(word_.load(std::memory_order_acquire)); }
  SnapshotSlot(const SnapshotSlot&) = delete;
  SnapshotSlot& operator=(const SnapshotSlot&) = delete;

  // The current value. Lock-free; safe concurrently with everything.
  std::shared_ptr<const T> Load() const {
    const uint64_t pinned = word_.fetch_add(kOneReader, std::memory_order_acquire);
    if (__builtin_expect(pinned >= kLastReader, 0)) Fatal("CowPtr: too many concurrent readers");
    Node* node = NodeOf(pinned);
    std::shared_ptr<const T> value = node->value;
    uint64_t now = word_.load(std::memory_order_relaxed);
    while (NodeOf(now) == node) {
      if (word_.compare_exchange_weak(now, now - kOneReader, std::memory_order_release,
                                      std::memory_order_relaxed)) {
        return value;
      }
    }
    // A writer retired the node and counted our pin into `pending`.
    if (node->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) delete node;
    return value;
  }

  // Publishes `value`. Stores must not run concurrently with each other (the
  // caller serialises writers); Loads may.
  void Store(std::shared_ptr<const T> value) {
    Node* fresh = new Node{std::move(value), {0}};
    const uint64_t old = word_.exchange(PackAddress(fresh), std::memory_order_acq_rel);
    Node* retired = NodeOf(old);
    if (retired == nullptr) return;
    const int64_t pins = int64_t(old >> kAddressBits);
    if (retired->pending.fetch_add(pins, std::memory_order_acq_rel) + pins == 0) delete retired;
  }

 private:
  struct alignas(256) Node {
    std::shared_ptr<const T> value;
    // Pins outstanding after the node was retired; see the file comment.
    std::atomic<int64_t> pending;
  };

  static constexpr int kAddressBits = 48;
  static constexpr uint64_t kAddressMask = (uint64_t{1} << kAddressBits) - 1;
  static constexpr uint64_t kTopByte = uint64_t{0xff} << 56;
  static constexpr uint64_t kOneReader = uint64_t{1} << kAddressBits;
  // A fetch_add that finds the count this high would overflow the word.
  static constexpr uint64_t kLastReader = ~kAddressMask;

  static Node* NodeOf(uint64_t word) { return static_cast<Node*>(UnpackAddress(word)); }

 public:
  // A 256-byte aligned pointer as the word's low 48 bits: bits 8-47 of the
  // address, and its top byte (a heap's tag; 0 without one) in the low
  // byte. Aborts if bits 48-55 are not 0. Public for the tests.
  static uint64_t PackAddress(const void* p) {
    const auto address = reinterpret_cast<uintptr_t>(p);
    if ((address & ~kAddressMask & ~kTopByte) != 0 || (address & 0xff) != 0) {
      Fatal("CowPtr: heap address does not fit in 48 bits");
    }
    return (address & kAddressMask) | address >> 56;
  }
  static void* UnpackAddress(uint64_t word) {
    const uint64_t low = word & kAddressMask;
    return reinterpret_cast<void*>((low & ~uint64_t{0xff}) | (low & 0xff) << 56);
  }

 private:
  mutable std::atomic<uint64_t> word_{0};
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_SNAPSHOT_SLOT_H_
