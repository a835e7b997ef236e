// FindFrameRule: DecodeFrameRule's results, cached.
#include "lockprof/agent/record/frame_rules.h"

#include <dlfcn.h>  // _dl_find_object (glibc 2.35)

#include <atomic>

namespace lockprof::agent {
namespace {

// The cache: a direct-mapped table of seqlocked slots (Boehm, "Can seqlocks
// get along with programming language memory models?", 2012). A slot being
// written is a miss; two writers to one slot: the second gives up.
struct Slot {
  std::atomic<uint32_t> seq{0};
  std::atomic<uintptr_t> key{0};
  std::atomic<uintptr_t> object{0};  // The object's unwind table (below).
  std::atomic<uint64_t> word0{0};    // kind, flags, cfa_offset
  std::atomic<uint64_t> word1{0};    // ra_offset, rbp_offset
};
constexpr size_t kSlots = 2048;  // 80 KiB
Slot g_slots[kSlots];

Slot& SlotFor(uintptr_t ra) { return g_slots[(ra * 0x9E3779B97F4A7C15ull) >> 53]; }
static_assert(kSlots == size_t(1) << 11, "the hash keeps 11 bits");

bool Lookup(uintptr_t ra, uintptr_t object, FrameRule* out) {
  Slot& slot = SlotFor(ra);
  const uint32_t s1 = slot.seq.load(std::memory_order_acquire);
  if (s1 & 1) return false;
  const uintptr_t key = slot.key.load(std::memory_order_relaxed);
  const uintptr_t obj = slot.object.load(std::memory_order_relaxed);
  const uint64_t w0 = slot.word0.load(std::memory_order_relaxed);
  const uint64_t w1 = slot.word1.load(std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (slot.seq.load(std::memory_order_relaxed) != s1 || key != ra || obj != object) return false;
  out->kind = FrameRule::Kind(w0 & 0xff);
  out->cfa_from_rbp = (w0 >> 8) & 1;
  out->rbp_saved = (w0 >> 9) & 1;
  out->cfa_offset = int32_t(uint32_t(w0 >> 32));
  out->ra_offset = int32_t(uint32_t(w1));
  out->rbp_offset = int32_t(uint32_t(w1 >> 32));
  return true;
}

void Store(uintptr_t ra, uintptr_t object, const FrameRule& rule) {
  Slot& slot = SlotFor(ra);
  uint32_t s = slot.seq.load(std::memory_order_relaxed);
  if ((s & 1) || !slot.seq.compare_exchange_strong(s, s + 1, std::memory_order_relaxed)) return;
  std::atomic_thread_fence(std::memory_order_release);
  slot.key.store(ra, std::memory_order_relaxed);
  slot.object.store(object, std::memory_order_relaxed);
  slot.word0.store(uint64_t(rule.kind) | uint64_t(rule.cfa_from_rbp) << 8 |
                       uint64_t(rule.rbp_saved) << 9 | uint64_t(uint32_t(rule.cfa_offset)) << 32,
                   std::memory_order_relaxed);
  slot.word1.store(uint64_t(uint32_t(rule.ra_offset)) | uint64_t(uint32_t(rule.rbp_offset)) << 32,
                   std::memory_order_relaxed);
  slot.seq.store(s + 2, std::memory_order_release);
}

}  // namespace

FrameRule FindFrameRule(uintptr_t return_address) {
  // The object's unwind table, in each entry: an object dlclose()d and
  // another loaded at its address do not share rules (unless their tables
  // lie at the same address: frame_rules.h).
  dl_find_object found;
  if (_dl_find_object(reinterpret_cast<void*>(return_address - 1), &found) != 0) {
    return FrameRule{};  // Not in a loaded object (JIT code?): libgcc may know it.
  }
  const auto object = reinterpret_cast<uintptr_t>(found.dlfo_eh_frame);
  FrameRule rule;
  if (Lookup(return_address, object, &rule)) return rule;
  rule = DecodeFrameRule(return_address);
  Store(return_address, object, rule);
  return rule;
}

}  // namespace lockprof::agent
