// Locks that threads held when they exited: the classic abandoned lock, a
// hang whose holder no longer exists to be listed. A thread's record is
// freed at its exit (lock_tracking.cc), so these holds are kept apart, the
// thread's name with them (its /proc entry is gone), for the held-locks
// page and the stall watchdog.
//
// Bounded: the holds of the latest kMaxExitedHolders such threads. A hold
// is shown only while no live thread holds its lock: once one does, the
// abandoned hold has ended. It is not otherwise known to have ended (another
// thread may unlock a normal pthread mutex, or the lock be destroyed), so
// readers say "held when it exited", not "held".
#ifndef LOCKPROF_AGENT_RECORD_EXITED_HOLDS_H_
#define LOCKPROF_AGENT_RECORD_EXITED_HOLDS_H_

#include <vector>

#include "lockprof/agent/record/lock_tracking.h"

namespace lockprof::agent {

inline constexpr int kMaxExitedHolders = 16;

// The exiting thread `view.tid`, whose record lists view.held: keeps them
// (marked exited, with this thread's name). Called on that thread.
void RememberExitedHolds(ThreadLocksView view);

// Appends to `live` (the live threads' records) the exited threads whose
// kept holds are of locks no live thread holds, with those holds only.
void AppendExitedHolds(std::vector<ThreadLocksView>* live);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_EXITED_HOLDS_H_
