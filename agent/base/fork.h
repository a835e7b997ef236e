// Keeping the agent consistent across fork().
//
// After fork() only the forking thread exists in the child; everything the
// other threads were doing is frozen mid-way in the child's copy of memory.
// lockprof state that such a thread could have been in the middle of
// changing is made safe in one of two ways:
//  * Agent mutexes that profile readers take (the symbolizer's, the label
//    registry's, the one around the dynamic loader's dl_iterate_phdr) are
//    registered with HoldAcrossFork(): a pthread_atfork prepare handler takes
//    them all, so fork() waits until no thread is inside them, and both
//    processes release them after.
//  * Per-lock bookkeeping that cannot be enumerated (the wait ledgers and
//    CondVar queues of lockprof's primitives, under their SpinLock) compares
//    a generation recorded with its data to ForkGeneration(): the child's
//    generation differs, so it knows that every thread it had counted
//    belonged to the parent, and starts afresh.
//  * Services whose threads do not exist in the child (the admin server,
//    the uploader) register an OnForkChild() handler that makes the child
//    forget them, so that it can start its own.
// The handlers are registered during static initialisation, before main; a
// fork() from an earlier static initialiser is not covered.
#ifndef LOCKPROF_AGENT_BASE_FORK_H_
#define LOCKPROF_AGENT_BASE_FORK_H_

#include <atomic>
#include <cstdint>
#include <mutex>

namespace lockprof::agent {

// Incremented in the child by the pthread_atfork child handler.
// Constant-initialised to 0.
extern std::atomic<uint32_t> g_fork_generation;

// How many fork()s separate this process from the one that started the
// program: 0 in the original process. One relaxed load.
inline uint32_t ForkGeneration() { return g_fork_generation.load(std::memory_order_relaxed); }

// The agent mutexes held across fork(), in the order fork() takes them:
// a mutex held while another is taken must come first.
enum class ForkRank {
  kAdminServer = 0,  // Starts and stops the admin server (server/admin_server.cc).
  kUploader = 1,     // Starts and stops the uploader.
  kLabels = 2,       // The label registry.
  // Serializes new lock-order edges (record/lock_tracking.cc); takes
  // kLockGraph, and kSymbolizer when abort mode reports a cycle past the
  // kept reports.
  kLockOrderReport = 3,
  kSymbolizer = 4,   // Symbolizer::mu_; takes kLoader (build-ids).
  kLoader = 5,       // Around dl_iterate_phdr (mappings.cc).
  kDeltas = 6,       // The delta endpoints' positions (pprof/deltas.cc).
  kLockGraph = 7,    // Lock-order checking's graph (deadlock/lock_graph.cc).
  kMetrics = 8,      // What /metrics last wrote (metrics/metrics.cc).
  kExitedHolds = 9,  // Holds of exited threads (record/exited_holds.cc).
  kCount = 10,
};

// Makes fork() take *mu (which must never be destroyed) before forking and
// release it in the parent and in the child. One mutex per rank.
void HoldAcrossFork(std::mutex* mu, ForkRank rank);

// Makes every later fork() call fn() in the child, after the mutexes above
// were released there, in registration order. For state that belongs to
// threads the child does not have: fn makes the child forget it. fn runs
// inside fork(), with no other thread in the process: it must not wait for
// anything, and should stick to async-signal-safe calls (close, not
// malloc). At most kMaxForkChildHandlers; registering a handler twice runs it
// once. Thread-safe.
inline constexpr int kMaxForkChildHandlers = 16;
void OnForkChild(void (*fn)());

// Called with true before the prepare handler takes the mutexes above, and
// with false once the parent's or the child's handler has released them and
// run the child handlers. The recorder (agent/record) sets it, so that those
// mutexes are taken as lockprof's own: not recorded, and adding no
// lock-order edge, whose recording takes two of them.
void SetForkHandlerScope(void (*scope)(bool enter));

// True from fork()'s prepare handler until its parent's or child's: the
// mutexes above are held, and a call into lockprof from another atfork
// handler (one registered before lockprof's runs inside that window) must
// not wait for them.
extern std::atomic<bool> g_forking;
inline bool ForkInProgress() { return g_forking.load(std::memory_order_acquire); }

// A new mutex, never destroyed (fork() may take it at exit), held across
// fork() at `rank`; with `in_child`, that handler is registered with
// OnForkChild too, to run after the mutex is released in the child.
std::mutex* NewMutexHeldAcrossFork(ForkRank rank, void (*in_child)() = nullptr);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_BASE_FORK_H_
