// AddressLedger: exact accounting of who waited during which critical
// section, for locks whose memory lockprof does not own.
//
// lockprof::Mutex keeps its waiters' ledger inside the lock. A
// pthread_mutex_t's layout is glibc's, so the interposer keeps the same
// ledger (per class of waiter: readers, writers) in a table keyed by the
// lock's address: a thread registers before it blocks and leaves once it
// holds the lock; a release charges
//   n * now - sum(charged-from times)
// (every waiter's waiting since the later of its start and the previous
// release) and moves every charged-from time to `now`, exactly as
// internal/wait_ledger.h describes.
//
// Bounded: kBuckets buckets of kPerBucket entries (about 100 KiB, static).
// An entry exists only while its lock has registered waiters. A waiter whose
// bucket is full is not registered (Enter returns false; Dropped() counts
// it): its wait is missing from the mutex profile, nothing else changes.
//
// Thread-safety: every method may be called concurrently; each touches one
// bucket under that bucket's spin lock, for a few instructions.
// fork(): ResetInChild() (from a pthread_atfork child handler, while the
// child has one thread) forgets the parent's waiters and any bucket lock a
// parent thread held.
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_ADDRESS_LEDGER_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_ADDRESS_LEDGER_H_

#include <atomic>
#include <cstdint>

namespace lockprof::interpose {

class AddressLedger {
 public:
  static constexpr int kClasses = 2;  // 0: readers (and plain mutexes), 1: writers.
  static constexpr int kBuckets = 512;
  static constexpr int kPerBucket = 4;

  constexpr AddressLedger() = default;
  AddressLedger(const AddressLedger&) = delete;
  AddressLedger& operator=(const AddressLedger&) = delete;

  // A thread of class `c` starts waiting for `lock` at `start`. False if it
  // could not be registered (then it must not call Leave).
  bool Enter(const void* lock, int c, int64_t start);
  // That thread stops waiting (it holds the lock, or gave up).
  void Leave(const void* lock, int c, int64_t start);
  // `lock` is being released at `now`: charged[c] = the waiting of class c
  // since each waiter's charged-from time (0 if nobody waits).
  void Settle(const void* lock, int64_t now, int64_t charged[kClasses]);

  // Waiters that found their bucket full, since the start.
  int64_t Dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Threads registered now, in any class of any lock.
  int64_t Waiters() const { return waiters_.load(std::memory_order_relaxed); }

  // In a fork()ed child, before it starts threads: forget everything.
  void ResetInChild();

 private:
  struct Entry {
    const void* lock;
    int32_t waiters[kClasses];
    // Sums of charged-from times, modular (n * now - sum stays exact).
    uint64_t sum[kClasses];
    int64_t last_settle;
  };
  struct alignas(64) Bucket {
    std::atomic<uint32_t> spin;
    Entry entries[kPerBucket];
  };

  Bucket& BucketOf(const void* lock);
  static void Lock(Bucket& b);
  static void Unlock(Bucket& b) { b.spin.store(0, std::memory_order_release); }
  static Entry* Find(Bucket& b, const void* lock);

  Bucket buckets_[kBuckets] = {};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> waiters_{0};
};

// The process's ledger for every interposed lock.
AddressLedger& Ledger();

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_ADDRESS_LEDGER_H_
