// The interposer's slow paths, shared by its mutex, rwlock and condition
// variable entry points (interpose_*.cc).
//
// They give a pthread lock lockprof::Mutex's profiles (mutex.h describes
// them): the mutex profile charges each release, exactly, the waiting done
// during the critical section it ends (internal/waiter_table.h, shared with
// lockprof::Mutex); the block profile
// charges each waiter, recorded at its own release (deferred_block.h); the
// hold sampler times about 1 in SetHoldProfileRate() acquisitions
// (HeldLocks). Stacks are captured before a waiter sleeps and after a
// release, never inside a critical section, except around a condition wait
// (interpose_cond.cc says why).
//
// Never profiled: locks taken while this thread is inside the recorder
// (agent::InRecorder: the allocator, the symbolizer, the unwinder), locks
// taken by the unwinder's code whoever called it, and, in
// liblockprof_preload.so, locks taken by lockprof's own code
// (PassesThrough).
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_INTERPOSE_COMMON_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_INTERPOSE_COMMON_H_

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "lockprof/agent/base/quiet_calls.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/sampler.h"
#include "lockprof/primitives/internal/blocked_wait.h"
#include "lockprof/primitives/internal/futex.h"
#include "lockprof/primitives/internal/spin_backoff.h"
#include "lockprof/primitives/internal/waiter_table.h"
#include "lockprof/primitives/interpose/hand_offs.h"
#include "lockprof/primitives/interpose/held_locks.h"
#include "lockprof/primitives/interpose/lock_names.h"
#include "lockprof/primitives/interpose/mutex_word.h"
#include "lockprof/primitives/interpose/rwlock_word.h"
#include "lockprof/primitives/interpose/watched_block.h"

// The pthread functions the interposer defines: exported (the preload
// library's version script keeps them, and only them, global) and never
// inlined, so that __builtin_frame_address(0) in them (or in the slow half
// they tail-call, which takes their frame's place) is the frame whose
// caller every profile charges.
#define LOCKPROF_INTERPOSE_ENTRY extern "C" __attribute__((visibility("default"), noinline))

// An entry point whose slow halves it tail-calls (interpose_mutex.cc says
// why): its fast path then needs no frame of its own. GCC only: clang has
// no such attribute, and there the entry points keep their frame.
#if defined(__GNUC__) && !defined(__clang__)
#define LOCKPROF_INTERPOSE_FRAMELESS __attribute__((optimize("omit-frame-pointer")))
#else
#define LOCKPROF_INTERPOSE_FRAMELESS
#endif

namespace lockprof::interpose {

// How long a contended acquisition spins before it registers and sleeps,
// in pause instructions: a critical section of a few hundred nanoseconds
// ends sooner than the bookkeeping of a wait (as lockprof::Mutex spins
// before it sleeps). How often it tries in that span is the caller's
// (MutexSpin below; RwlockSpin: a try after each pause).
inline constexpr int kSpinPauses = 50;

// A mutex's waiter looks at glibc's lock word only twice, after 16 pauses
// and after 48 (the first look, glibc's trylock, was the fast path's), and
// tries the lock only when the word reads unlocked, as a lockprof::Mutex
// waiter does before it marks its lock (mutex.h): glibc's trylock is a
// compare-and-swap, which takes the lock's cache line from the holder even
// when it fails, and each look pulls the line too. A thread that loses the
// lock starts waiting just as the new holder starts its sections, so early
// looks cost the holder a miss and almost never find the lock free. Against
// seven looks in 63 pauses (after 1, 3, 7, 15, 31, 47 and 63), an empty
// critical section ran 1.24-1.28x faster at 2-16 threads on 2 cores (0.82-
// 0.85x glibc's own, from 0.63-0.66x) and the cache workload's p99 fell by
// a tenth, with neither's throughput, nor that of a workload that works
// outside the lock, worse. Looking at 32 and 64 matched glibc on the empty
// section but doubled that workload's p99 (BENCHMARKS.md, "Contended
// programs under the interposer").
inline constexpr int kMutexFirstLook = 16;
inline constexpr int kMutexSpinPauses = 48;
inline internal::SpinBackoff MutexSpin() {
  return internal::SpinBackoff::Looking<kMutexFirstLook, kMutexSpinPauses>(kMutexSpinPauses);
}

// True if `pc` lies in lockprof's own code of the preload library (never in
// the link-time form), or in the stack unwinder's (libgcc_s, or libunwind
// if the program brought it: lockprof unwinds with it, so recording one of
// its locks could re-enter it with that lock held); and for every `pc`
// before the interposer's initialiser has run (the constructors of the
// libraries loaded ahead of it).
bool IsPassThroughCode(const void* pc);

// True if a lock taken by the code at return address `caller` goes straight
// to glibc, neither profiled nor tracked: this thread is inside the recorder
// (the allocator, the symbolizer, the unwinder), or the caller is
// IsPassThroughCode.
inline bool PassesThrough(const void* caller) {
  return agent::InRecorder() || IsPassThroughCode(caller);
}

// The waiter's class in the waiter table.
inline int WaiterClass(agent::LockMode mode) { return mode == agent::LockMode::kWrite ? 1 : 0; }

// Forgets this thread's tracked holds of mutexes that another thread has
// unlocked since (glibc lets any thread unlock a normal or adaptive mutex;
// hand_offs.h says what that left behind), in HeldLocks and in this
// thread's own lock record. Called while holders are tracked, before an
// acquisition is recorded and before a wait's edges are checked: one test
// when this thread holds nothing, one load of the hand-off count
// otherwise, and one slot read per held mutex when the count moved.
// `hand_offs`: HandOffCount(), just loaded.
void ForgetHandedOffMutexesSlow(uint64_t hand_offs);
inline void ForgetHandedOffMutexes(uint64_t hand_offs) {
  if (t_held.count > 0 && hand_offs != t_held.hand_offs_seen) {
    ForgetHandedOffMutexesSlow(hand_offs);
  }
}

// At an unlock of mutex `m` while holders are tracked, by a thread that
// found no entry for it (`caller`: the unlock's return address): publishes
// the hand-off, for a kind of mutex that glibc lets another thread unlock,
// unless lockprof's own code or the recorder released it (such a lock is
// never tracked).
void NoteMutexHandOff(const pthread_mutex_t* m, const void* caller);

// What a wait for `lock` (a mutex if `mode` is kNone, else an rwlock)
// checks before it sleeps: a self-deadlock, for a mutex that glibc says
// this thread holds and that never lets its holder in again (whatever this
// thread's lock record says: glibc's owner is the truth); else its edges,
// for a lock in the lock-order graph (TrackHold says which are).
//
// Nothing for a wait with a deadline (pthread_mutex_timedlock, _clocklock,
// the rwlock's timed calls, std::timed_mutex): it cannot hang, as a try
// cannot, and a program that backs off when it times out (lets go of what
// it holds, and tries again) uses it to avoid the deadlock an order would
// cause. Its acquisition is recorded as a try too (it makes no edge to the
// lock; later acquisitions make edges from it), as ThreadSanitizer records
// it.
inline internal::OrderCheck OrderCheckBeforeWait(const void* lock, agent::LockMode mode,
                                                 const Deadline& deadline) {
  if (!agent::LockOrderCheckingOn() || deadline.timed) return internal::OrderCheck::kNone;
  if (mode == agent::LockMode::kNone &&
      WaitNeverEndsFor(static_cast<const pthread_mutex_t*>(lock), int(syscall(SYS_gettid)))) {
    return internal::OrderCheck::kOwnLock;
  }
  return InLoadedObject(lock) ? internal::OrderCheck::kEdges : internal::OrderCheck::kNone;
}

// A lock acquisition whose first try failed with EBUSY. `try_once()` tries
// again (0, EBUSY or an error) at each poll of `spin`; `block()` is the real
// blocking call, whose deadline is `deadline`; `block_until(clock, until)`
// the lock's real timed acquisition, for the stall watchdog
// (watched_block.h).
// Spins a little, then registers the wait and blocks. `rw_waiters`, if set,
// counts the threads blocked here (the rwlock release's quick test, and
// RwlockSpin's). Returns exactly what the real functions returned.
template <typename Try, typename Block, typename BlockUntil>
int ContendedAcquire(const void* lock, agent::LockMode mode, const void* frame, const void* caller,
                     std::atomic<int64_t>* rw_waiters, const Deadline& deadline,
                     internal::SpinBackoff spin, Try try_once, Block block,
                     BlockUntil block_until) {
  while (spin.Pause()) {
    const int r = try_once();
    if (r != EBUSY) return r;
  }
  // Tracked holders (the held-locks page, the stall watchdog) want the wait
  // even with both profiles off.
  if (PassesThrough(caller) || !(agent::ContentionTimingEnabled() || agent::LockTrackingOn())) {
    return block();
  }
  agent::KeepErrno keep_errno;  // glibc's lock calls leave it alone (quiet_calls.h).
  // The wait starts before the lock's name is looked up: a static lock's
  // first lookup reads the program's symbol table (milliseconds on a busy
  // machine), and the thread is waiting for the lock all the same.
  const int64_t start = agent::MonotonicNanos();
  const char* name;
  {
    agent::RecorderScope scope;
    name = LockName(lock);
  }
  const agent::EventTags tags = LockTags(lock, name, mode);
  // Only waits that sleep are counted here: a spinning waiter has no name
  // for the lock (its lookup is this slow path's).
  agent::CountLockWait(tags);
  // Published for /debug/lockprof/held while it waits, its lock-order edges
  // checked first if the lock is in the graph (TrackHold says which are).
  if (agent::LockTrackingOn()) ForgetHandedOffMutexes(HandOffCount());
  internal::BlockedWait blocked(frame, lock, tags, OrderCheckBeforeWait(lock, mode, deadline),
                                start);
  const int c = WaiterClass(mode);
  int64_t counted_from = -1;
  const bool registered =
      internal::Waiters().Enter(lock, c, blocked.start(), nullptr, &counted_from);
  if (rw_waiters != nullptr) rw_waiters->fetch_add(1, std::memory_order_relaxed);
  const int r = WatchedBlock(lock, tags, blocked.start(), deadline, block, block_until);
  if (rw_waiters != nullptr) rw_waiters->fetch_sub(1, std::memory_order_relaxed);
  const int64_t released_at = internal::Waiters().Leave(lock, c, blocked.start(), registered);
  if (r == 0 || r == EOWNERDEAD) {
    // Ends at the release that let it in; a timed-out wait ends now: the
    // holder kept the lock all along.
    blocked.Charged(counted_from, released_at);
    blocked.RecordAtRelease(tags, lock, [&] { return MarkSlowRelease(lock, mode); });
  } else if (r == ETIMEDOUT) {
    blocked.Record(tags);
  }
  return r;
}

// The hold sampler picked this acquisition (agent::ShouldSampleHold()), or
// holders are tracked (which keeps the sampler's countdown expired): starts
// the hold's clock if it is sampled, and records it in this thread's lock
// record while holders are tracked (`tried`: by a try function). `frame`
// and `caller`: the entry point's frame and return address.
void SampleHold(const void* lock, agent::LockMode mode, const void* frame, const void* caller,
                bool tried = false);

// What a release charges, gathered before the real release.
struct ReleaseCharge {
  int64_t charged[internal::WaiterTable::kClasses] = {0, 0};
  int64_t hold_ns = -1;
  agent::LockMode held_mode = agent::LockMode::kNone;
};

// Before the real release of `lock`: ends this thread's hold entry for it
// (and its lock record's, if tracked), and settles its waiters if
// `maybe_waiters`. False if this thread had no entry for it.
bool BeforeRelease(const void* lock, bool maybe_waiters, ReleaseCharge* charge);

// After the real release: records what `charge` holds, at the stack of the
// caller of the entry point whose frame is `frame`, then the block events
// this thread parked for `lock`. `class_modes` labels each waiter class's
// charge (kNone, kNone for a mutex; kRead, kWrite for a rwlock).
void AfterRelease(const void* lock, const ReleaseCharge& charge,
                  const agent::LockMode class_modes[internal::WaiterTable::kClasses],
                  const void* frame, const void* caller);

// A condition wait's release, recorded before glibc releases `m` inside the
// wait: as BeforeRelease and AfterRelease, except that the block events
// parked for `m` stay parked (their slow-acquire hook may take `m`, held
// here) for the release after the wait (KeepParkedBlocksForRelease).
void ReleaseForConditionWait(pthread_mutex_t* m, const void* frame, const void* caller);

// After a condition wait that took `m` back: the release of `m` that ends
// this hold records the block events still parked for it.
void KeepParkedBlocksForRelease(pthread_mutex_t* m);

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_INTERPOSE_COMMON_H_
