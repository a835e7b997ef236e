// WaiterTable: exact accounting of who waited during which critical section,
// kept outside the locks, in one process-wide table keyed by the lock's
// address (as parking_lot and Go's semaphore table keep their waiters).
//
// The mutex profile charges each release with the time every waiter spent
// waiting during the critical section it ends: for each waiter, from the
// later of its wait start and the section's start, to the release. An entry
// holds, per class of waiter (readers, writers), the number of waiters and
// the sum of their "charged-from" times. Settle(now) adds
//   n * now - sum
// (the exact total) and moves every waiter's charged-from time to `now`, so
// the next release is charged only what happens after it. A waiter that
// leaves subtracts max(its start, the last settle time), which is its current
// charged-from time. Nothing is approximated (Go averages the head and tail
// waiters instead).
//
// Why outside the lock: a lock then carries only its word, so that
// lockprof::Mutex is smaller than std::mutex, and the bookkeeping of its
// sleepers never writes to the cache line that its holder and its spinning
// waiters are reading. Only threads that are about to sleep, and the
// releases that must wake them, touch the table: one bucket, under the
// bucket's SpinLock, for a few instructions.
//
// An entry exists only while its lock has registered waiters (a lock cannot
// be destroyed while threads wait for it), so the table holds no state for
// the locks of a program, only for its current waits. Bounded: kBuckets
// buckets of kPerBucket entries (160 KiB, static, zero pages until used).
// A waiter whose bucket is full is not registered (Enter returns false,
// Dropped() counts it): its wait is missing from the mutex profile, and,
// until it leaves, no waiter of any lock of that bucket is told it was the
// last (Leave's `if_last` is not run), so that a lock never stops waking
// while a sleeper it cannot see exists.
//
// Where a wait ends: a waiter's block event ends at its charged-from time
// when it leaves (Leave() returns it): the last release that settled it,
// normally the one that let it in, as Go's block profile ends a wait at the
// release that readied the waiter. With the start Enter() counted it from,
// the block event spans exactly what the mutex profile charged for it, so
// the two profiles' totals are the same sum. What follows is in neither:
// the scheduler's delay in running the woken waiter, and the section of a
// thread that took the lock ahead of it (barging in) and released it
// without settling (its lock word said nobody slept).
//
// A waiter reads its start time before it enters (and before it captures
// its stack), so a settle may fall between the two: Enter() then counts the
// waiter from the settle, exactly as Leave() will, and the entry stays
// balanced; it tells the waiter so, and the block event starts there too.
// A release in that gap that does not settle (nobody was registered yet, so
// the lock's word said nobody slept), followed by a thread that barges in:
// the waiting before that release is charged to the barger's section, not
// to the one it fell in. Both profiles' totals stay the same.
//
// fork(): the child forgets every waiter (they are threads of the parent)
// in a child handler, before it runs anything else. A lock that also counts
// its class-0 waiters in its own word (SharedMutex counts queued readers in
// its reader count) passes that word to Enter, and the handler takes the
// forgotten waiters out of it too: otherwise they would hold the lock in the
// child forever (RELIABILITY.md, "fork()").
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_WAITER_TABLE_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_WAITER_TABLE_H_

#include <atomic>
#include <cstdint>

#include "lockprof/primitives/internal/spin_lock.h"

namespace lockprof::internal {

class WaiterTable {
 public:
  static constexpr int kClasses = 2;  // 0: readers (and exclusive locks), 1: writers.
  static constexpr int kBuckets = 512;
  static constexpr int kPerBucket = 5;

  constexpr WaiterTable() = default;
  WaiterTable(const WaiterTable&) = delete;
  WaiterTable& operator=(const WaiterTable&) = delete;

  // A thread of class `c` starts waiting for `lock` at `start`. False if it
  // could not be registered; either way it must Leave() with the result.
  // `also_counted`: a word that counts each class-0 waiter of `lock` as one
  // unit in its low bits (see above); the same for every waiter of a lock,
  // of either class (the entry keeps the first one's).
  // `counted_from`, if set and registered: where the mutex profile's
  // account of this waiter starts (`start`, or a settle that fell after it).
  bool Enter(const void* lock, int c, int64_t start, std::atomic<uint64_t>* also_counted = nullptr,
             int64_t* counted_from = nullptr);

  // That thread stops waiting (it holds the lock, or gave up); `registered`
  // is what its Enter() returned. If it was registered and no other waiter
  // of class `c` of this lock is known, runs `if_last()` while still holding
  // the bucket's lock: a concurrent Enter() for that lock then happens
  // entirely before it (and was counted) or entirely after it.
  //
  // Returns where the mutex profile's account of this waiter ends: its
  // charged-from time (the last release that settled it, or where Enter()
  // counted it from if none did), so that its block event can end there
  // too (see "Where a wait ends" above); -1 if it was not registered
  // (nothing charged it).
  template <typename F>
  int64_t Leave(const void* lock, int c, int64_t start, bool registered, F if_last) {
    Bucket& b = BucketOf(lock);
    b.lock.Lock();  // Its fork-child answer is moot: ForgetInChild() ran.
    int64_t charged_until = -1;
    if (LeaveLocked(b, lock, c, start, registered, &charged_until)) if_last();
    b.lock.Unlock();
    return charged_until;
  }
  int64_t Leave(const void* lock, int c, int64_t start, bool registered) {
    return Leave(lock, c, start, registered, [] {});
  }

  // `lock` is being released now: adds to charged[c] the waiting of class
  // c since each waiter's charged-from time (nothing if nobody waits).
  // Adding, not assigning: a release that settles more than once
  // (SharedMutex's writer retries its release when a reader queues
  // meanwhile, and settles again) is charged the sum, and every nanosecond
  // moved out of the table lands in exactly one charge.
  //
  // The clock is read here, under the bucket's lock, and only if the lock
  // has waiters: a time read by the caller before it could precede the
  // start of a waiter that registered in between (the releasing thread
  // preempted, say), and settling at it would charge that waiter less
  // than nothing and corrupt the entry's sums for the others.
  void Settle(const void* lock, int64_t (&charged)[kClasses]) { SettleAt(lock, -1, charged); }
  // Settle() at `now` instead of the clock's time (tests). A `now` before
  // the latest time a waiter of the bucket was counted from, or before the
  // lock's last settle, is taken as that time: clocks read on different
  // CPUs may disagree by a little.
  void SettleAt(const void* lock, int64_t now, int64_t (&charged)[kClasses]);

  // Waiters that found their bucket full, since the start.
  int64_t Dropped() const { return dropped_.load(std::memory_order_relaxed); }

  // In a fork()ed child, while it has one thread: forgets every waiter.
  void ForgetInChild();

  // Which bucket holds `lock`'s entry (for tests).
  static int BucketIndex(const void* lock) {
    // Locks are at least 4-byte aligned and often 64 apart: mix the bits.
    const uint64_t h = reinterpret_cast<uintptr_t>(lock) * 0x9E3779B97F4A7C15ull;
    return int((h >> 40) % kBuckets);
  }

 private:
  struct Entry {
    const void* lock;
    std::atomic<uint64_t>* also_counted;
    int32_t waiters[kClasses];
    // Sums of charged-from times, modular (n * now - sum stays exact even
    // when n * now itself would overflow).
    uint64_t sum[kClasses];
    int64_t last_settle;
  };
  // 320 bytes: five cache lines, one bucket's lock and entries.
  struct alignas(64) Bucket {
    SpinLock lock;
    // Waiters of this bucket's locks that are not registered (see above).
    int32_t unregistered;
    Entry entries[kPerBucket];
    // The latest charged-from time Enter() counted here, for any of the
    // bucket's locks: no settle is earlier (SettleAt).
    int64_t latest_from;
  };
  static_assert(sizeof(Bucket) == 320, "a bucket is five cache lines");

  Bucket& BucketOf(const void* lock) { return buckets_[BucketIndex(lock)]; }
  static Entry* Find(Bucket& b, const void* lock);
  // Leave()'s bookkeeping under the bucket's lock; true: run `if_last`.
  // `charged_until`: Leave()'s result, set if the waiter was found.
  static bool LeaveLocked(Bucket& b, const void* lock, int c, int64_t start, bool registered,
                          int64_t* charged_until);

  Bucket buckets_[kBuckets] = {};
  std::atomic<int64_t> dropped_{0};
};

// The process's table, for every lock lockprof keeps waiters of:
// lockprof::Mutex, SharedMutex and the interposed pthread locks.
// Constant-initialised: usable before any constructor runs.
WaiterTable& Waiters();

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_WAITER_TABLE_H_
