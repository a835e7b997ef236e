// What lock tracking hands to the reporting side: new lock-order cycles and
// stalled waits. Implemented in lock_order.cc, which owns the settings, the
// hooks, the stderr lines and the counters.
#ifndef LOCKPROF_AGENT_DEADLOCK_EVENTS_H_
#define LOCKPROF_AGENT_DEADLOCK_EVENTS_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "lockprof/agent/deadlock/lock_graph.h"
#include "lockprof/agent/lock_order.h"

namespace lockprof::agent {

// The LockOrderMode in effect, as an int.
extern std::atomic<int> g_lock_order_mode;
inline bool LockOrderCheckingOn() {
  return g_lock_order_mode.load(std::memory_order_relaxed) != int(LockOrderMode::kOff);
}

// "off", "report" or "abort".
const char* LockOrderModeName();

// The stderr line of each cycle just found, on the thread that closed them,
// outside the graph's lock; allocation-free, as adding the edges was. Runs
// no code but lockprof's: it may run while the acquisitions that add edges
// are serialized.
void WriteInversionLines(const Cycle* cycles, int n);

// The hook, and kAbort's report, of one cycle just found, on the thread that
// closed it. Runs after the acquisitions that add edges are let go of: the
// hook may take any lock but the cycle's, and a thread that holds one of
// those may be adding an edge. kAbort prints the whole report (symbolized
// stacks: it allocates) and does not return.
void NotifyInversion(const Cycle& cycle);

// kAbort's report of a cycle and the abort (nothing while the mode is not
// kAbort): NotifyInversion's end, and alone for a cycle found past the
// kept reports' limit, which runs no hook but must still abort.
void AbortIfAsked(const Cycle& cycle);

// Reports one stalled wait, on the waiting thread. `exited_name`: the
// holder's name, if it has exited (its /proc entry is gone).
void ReportStalledWait(const LockStall& stall, const char* exited_name);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_DEADLOCK_EVENTS_H_
