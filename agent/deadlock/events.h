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

// Reports cycles just found, on the thread that closed them, outside the
// graph's lock. Allocation-free, as adding the edges was, but for kAbort
// mode, which prints the whole report (symbolized stacks) and does not
// return.
void ReportInversions(const Cycle* cycles, int n);

// Reports one stalled wait, on the waiting thread.
void ReportStalledWait(const LockStall& stall);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_DEADLOCK_EVENTS_H_
