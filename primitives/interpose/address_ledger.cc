#include "lockprof/primitives/interpose/address_ledger.h"

#include <sched.h>

#include <algorithm>
#include <cstring>

#include "absl/base/attributes.h"
#include "lockprof/primitives/internal/futex.h"

namespace lockprof::interpose {

AddressLedger::Bucket& AddressLedger::BucketOf(const void* lock) {
  // Locks are at least 4-byte aligned and often 64 apart: mix the bits.
  uint64_t h = reinterpret_cast<uintptr_t>(lock) * 0x9E3779B97F4A7C15ull;
  return buckets_[(h >> 40) % kBuckets];
}

void AddressLedger::Lock(Bucket& b) {
  for (int spins = 0;; ++spins) {
    uint32_t seen = 0;
    if (b.spin.load(std::memory_order_relaxed) == 0 &&
        b.spin.compare_exchange_weak(seen, 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return;
    }
    if (spins < 64) {
      internal::SpinPause();
    } else {
      sched_yield();  // The holder was preempted: let it run.
    }
  }
}

AddressLedger::Entry* AddressLedger::Find(Bucket& b, const void* lock) {
  for (Entry& e : b.entries) {
    if (e.lock == lock) return &e;
  }
  return nullptr;
}

bool AddressLedger::Enter(const void* lock, int c, int64_t start) {
  Bucket& b = BucketOf(lock);
  Lock(b);
  Entry* e = Find(b, lock);
  if (e == nullptr) {
    e = Find(b, nullptr);
    if (e == nullptr) {
      Unlock(b);
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    *e = Entry{lock, {}, {}, 0};
  }
  ++e->waiters[c];
  e->sum[c] += uint64_t(std::max(start, e->last_settle));
  Unlock(b);
  waiters_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void AddressLedger::Leave(const void* lock, int c, int64_t start) {
  Bucket& b = BucketOf(lock);
  Lock(b);
  if (Entry* e = Find(b, lock)) {
    --e->waiters[c];
    e->sum[c] -= uint64_t(std::max(start, e->last_settle));
    bool empty = true;
    for (int k = 0; k < kClasses; ++k) empty &= e->waiters[k] == 0;
    if (empty) e->lock = nullptr;
  }
  Unlock(b);
  waiters_.fetch_sub(1, std::memory_order_relaxed);
}

void AddressLedger::Settle(const void* lock, int64_t now, int64_t charged[kClasses]) {
  for (int k = 0; k < kClasses; ++k) charged[k] = 0;
  Bucket& b = BucketOf(lock);
  Lock(b);
  if (Entry* e = Find(b, lock)) {
    for (int k = 0; k < kClasses; ++k) {
      const uint64_t all_now = uint64_t(e->waiters[k]) * uint64_t(now);
      charged[k] = int64_t(all_now - e->sum[k]);
      e->sum[k] = all_now;
    }
    e->last_settle = std::max(e->last_settle, now);
  }
  Unlock(b);
}

void AddressLedger::ResetInChild() {
  for (Bucket& b : buckets_) {
    b.spin.store(0, std::memory_order_relaxed);
    std::memset(static_cast<void*>(b.entries), 0, sizeof(b.entries));
  }
  waiters_.store(0, std::memory_order_relaxed);
}

namespace {
// Constant-initialised: usable before any constructor runs.
ABSL_CONST_INIT AddressLedger g_ledger;
}  // namespace

AddressLedger& Ledger() { return g_ledger; }

}  // namespace lockprof::interpose
