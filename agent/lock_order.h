// Deadlocks and stalls: lock-order checking, "who holds what", and a stall
// watchdog, for lockprof's own locks (Mutex, SharedMutex, and the mutex a
// CondVar waits with) and, under the pthread interposer, for pthread locks
// (std::mutex, std::shared_mutex, C libraries' locks) with one limit:
//  * Only an interposed lock that lives in a loaded object's data (a global
//    or static) joins the lock-order graph. A heap or stack pthread lock
//    dies without a call the interposer sees (std::mutex's destructor makes
//    none), so its memory may become another lock's, and edges kept for the
//    dead lock would report inversions that never were. Heap locks are
//    still listed as held and waited for.
// (An interposed lock's sleep is glibc's: while the stall watchdog is on,
// it sleeps first in glibc's timed lock until the threshold.)
//
// Lock-order checking (off by default):
//
//   lockprof::SetLockOrderChecking(lockprof::LockOrderMode::kReport);
//   // or LOCKPROF_LOCK_ORDER=report (or =abort) in the environment
//
// Each thread keeps the locks it holds. Acquiring B while holding A adds the
// edge A -> B to one process-wide acquired-before graph. The first time an
// edge closes a cycle (B -> A was taken before, on any thread, at any
// time), that is a potential deadlock, reported then, whether or not the
// program ever deadlocks: one line on stderr, the hook below, the counter
// lockprof_lock_order_inversions_total in /metrics, and the whole report
// (each edge's lock names and the stack that took it) at
// /debug/lockprof/lock-order and LockOrderReport(). kAbort prints the whole
// report and aborts: for test suites. A thread about to sleep for a lock
// checks its edges first, so a real deadlock is reported (or aborts) rather
// than hanging silently.
//
// What counts as an edge:
//  * try_lock() that succeeds makes its lock "held" (edges start from it),
//    but creates no edge into it: a try cannot wait, so it cannot deadlock.
//    Nor can a wait with a deadline: the interposer records a timed
//    acquisition (pthread_mutex_timedlock, _clocklock, the rwlocks' timed
//    calls) as a try, as ThreadSanitizer does.
//  * Read acquisitions of a SharedMutex count like write acquisitions: it
//    prefers writers (a reader queues behind a waiting writer), so a
//    read-read inversion deadlocks as soon as a writer waits on each lock.
//    glibc's rwlocks of the default kind (std::shared_mutex among them,
//    under the interposer) let a reader in past a waiting writer: a read
//    of one waited for while another thread holds it for reading is no
//    link of a cycle, so two threads reading two of them in opposite
//    orders are not reported; a write on either side is
//    (agent/deadlock/lock_graph.h).
//  * Re-acquiring a lock the thread already holds (a read lock taken twice)
//    creates no edge into it, from any lock the thread holds.
//  * A thread about to sleep for one of lockprof's own locks that it holds
//    (a Mutex locked twice, a SharedMutex read hold followed by lock(), or
//    a read lock taken again while a writer waits: the writer waits for
//    the first read hold, the second for the writer) never wakes: that
//    self-deadlock is reported as a cycle of one lock, through the same
//    channels and counter, before it sleeps. Under the interposer, so is
//    a wait for a normal or adaptive pthread mutex whose glibc owner is
//    the waiting thread (whatever its record says: glibc lets another
//    thread unlock such a mutex, undefined in POSIX, and a program that
//    does so is reported too, once per mutex and stack: another mutex at
//    its address is reported again once the first was destroyed, or the
//    new one initialised, with pthread_mutex_destroy or _init), unless it
//    is shared between processes.
//  * A lock that is destroyed leaves the graph with its edges, so memory
//    reused for another lock starts with none.
// Bounded memory: at most kMaxLockOrderNodes locks and kMaxLockOrderEdges
// edges; beyond that, new locks and edges are not checked (counted in
// lockprof_lock_order_dropped_total). Each thread records at most
// kMaxHeldLocks locks at once: a lock taken while it already holds that
// many gets its edges checked but is not recorded (no edges start from it,
// and /debug/lockprof/held does not list it), and is not counted; so does a
// SharedMutex read hold taken while the thread keeps four others open (their
// unlocks must find them in its state: primitives/internal/hold_sample.h).
//
// Cost while checking is on: every acquisition goes through the
// primitive's hook (the hold sampler's countdown is kept expired) and every
// release through its slow unlock. An acquisition that adds no new edge is
// an inline push of three stores into this thread's record, the release of
// its newest lock a pop; an edge this thread took lately costs a
// thread-local lookup, one the graph has already (another thread's, or
// one of more than the 256 a thread keeps: a registry lock with thousands
// of entry locks under it) a lock-free lookup in the graph's index of its
// edges; only a new edge captures a stack and takes the graph's internal
// lock. About +4 to +11 ns per
// uncontended lock+unlock (more while holding another lock) on the machine
// of BENCHMARKS.md, and a contended lock passes between threads more often
// (its sections are longer): 0.82x of off on the benchmarks' 2-thread
// cache workload. Recording since when and
// where each lock was taken (held-lock tracking, the stall watchdog) adds a
// clock read and a frame-pointer walk, about +20 ns more. Off (the default), nothing: the
// primitives' fast paths are unchanged.
//
// Who holds what: /debug/lockprof/held lists every lock that is
// waited for right now, with each waiting thread's stack and time waited
// so far, and, while holders are tracked (lock-order checking on, the stall
// watchdog on, or SetHeldLockTracking(true); LOCKPROF_TRACK_HELD=1), every
// held lock with its holder (and, but for lock-order checking alone, since
// when and the acquisition's stack: a frame-pointer walk, with no CFI
// fallback, since it runs on every acquisition; in code built without frame
// pointers it may keep only the lock's caller). It
// reads per-thread records without taking any lock an application thread
// could hold, so it answers while the application is deadlocked.
//
// Stall watchdog (off by default): SetStallReportThreshold(), or
// LOCKPROF_STALL_REPORT_MS=<ms>. A thread that has slept longer than that
// for a lock reports once, while still waiting, with the holder's identity
// and stack: a line on stderr, the stall hook, and
// lockprof_lock_stalls_total. Holders are tracked while it is on.
#ifndef LOCKPROF_AGENT_LOCK_ORDER_H_
#define LOCKPROF_AGENT_LOCK_ORDER_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "lockprof/agent/base/export.h"

namespace lockprof {

inline constexpr int kMaxLockOrderNodes = 4096;
inline constexpr int kMaxLockOrderEdges = 8192;
inline constexpr int kMaxHeldLocks = 16;

enum class LockOrderMode {
  kOff = 0,
  kReport = 1,  // Report each new cycle and go on.
  kAbort = 2,   // Print the report and abort().
};

// Thread-safe; takes effect at each thread's next acquisition. Overrides
// LOCKPROF_LOCK_ORDER.
LOCKPROF_EXPORT void SetLockOrderChecking(LockOrderMode mode);
LOCKPROF_EXPORT LockOrderMode LockOrderChecking();

// One edge of an inversion: `to` was acquired while `from` was held.
struct LockOrderEdge {
  const char* from;  // Lock names; "(unnamed)" for a lock without one.
  const char* to;
  int64_t thread_id;  // The thread that took the edge first (Linux tid).
  // That acquisition's stack: return addresses, the caller of lock() first.
  const uintptr_t* stack;
  int stack_depth;
};

struct LockOrderInversion {
  // The cycle, starting with the edge just taken; edges[i].to is
  // edges[i + 1].from, and the last edge's `to` is the first's `from`. Of
  // a cycle longer than 16 locks, only the first 16 edges (and the report
  // says how many more). Lock names longer than 127 bytes are cut ("...").
  const LockOrderEdge* edges;
  int num_edges;
};

using LockOrderHook = void (*)(const LockOrderInversion& inversion);

// Called on the thread whose acquisition closed the cycle, before it
// blocks (everything is valid only during the call), with no lock of
// lockprof's held: it may take other locks (a logger's), but not the locks
// of the cycle. Called for the cycles the report keeps (the first
// kMaxLockOrderReports); later ones get their stderr line and the counter
// (and kAbort's abort).
// Runs with cancellation disabled (a lock call is no cancellation point).
// An exception it throws is dropped: it cannot leave the lock call (which
// would leave the lock held with no guard to release it). nullptr removes it.
LOCKPROF_EXPORT void SetLockOrderHook(LockOrderHook hook);

// Every inversion found so far (the first kMaxLockOrderReports), as text
// with symbolized stacks, or as JSON ({"inversions": [...]}).
inline constexpr int kMaxLockOrderReports = 64;
LOCKPROF_EXPORT std::string LockOrderReport();
LOCKPROF_EXPORT std::string LockOrderReportJson();
LOCKPROF_EXPORT uint64_t LockOrderInversions();

// Records holders with since when and where they took each lock (see
// above), with or without lock-order checking. Overrides LOCKPROF_TRACK_HELD.
LOCKPROF_EXPORT void SetHeldLockTracking(bool on);

// A lock wait that has lasted longer than the threshold (0: off).
struct LockStall {
  const char* lock;
  int64_t waiter_thread_id;
  std::chrono::nanoseconds waited;
  // The holder, when holders are tracked and one was found (else 0 and an
  // empty stack): its thread id and acquisition stack.
  int64_t holder_thread_id;
  std::chrono::nanoseconds held;
  const uintptr_t* holder_stack;
  int holder_stack_depth;
  // The holder has exited, holding the lock (an abandoned lock); the figures
  // above are of its hold as it was then.
  bool holder_exited;
};

using LockStallHook = void (*)(const LockStall& stall);

LOCKPROF_EXPORT void SetStallReportThreshold(std::chrono::nanoseconds threshold);
// Called on the waiting thread, once per stalled wait, with cancellation
// disabled (a lock call is no cancellation point). An exception it throws
// is dropped and the wait goes on. nullptr removes it.
LOCKPROF_EXPORT void SetLockStallHook(LockStallHook hook);
LOCKPROF_EXPORT uint64_t LockStalls();

}  // namespace lockprof

#endif  // LOCKPROF_AGENT_LOCK_ORDER_H_
