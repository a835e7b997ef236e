// The reports of lock-order checking and of the held-locks page: text with
// symbolized stacks, JSON, and (held locks) a pprof profile. They run on
// the reader's thread, or on a thread that is about to abort, never on a
// recording path.
#ifndef LOCKPROF_AGENT_DEADLOCK_REPORTS_H_
#define LOCKPROF_AGENT_DEADLOCK_REPORTS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "lockprof/agent/deadlock/lock_graph.h"

namespace lockprof::agent {

// A cycle as the reports read it (on a reader's thread, which may
// allocate).
struct InversionEdge {
  std::string from;
  std::string to;
  int64_t tid = 0;
  std::vector<uintptr_t> stack;
};
struct Inversion {
  std::vector<InversionEdge> edges;  // The first kMaxCycleEdges.
  int total_edges = 0;
};
Inversion ToInversion(const Cycle& cycle);

// Cycles found so far (the first kMaxLockOrderReports).
std::vector<Inversion> LockOrderInversionsFound();

// One inversion as text: the cycle, then each edge with its stack.
std::string InversionText(const Inversion& inversion);

// Every inversion found so far.
std::string LockOrderText();
std::string LockOrderJson();

// Held and awaited locks right now (SnapshotThreadLocks).
std::string HeldLocksText();
std::string HeldLocksJson();
// Gzipped profile.proto: one sample per waiting thread at its stack,
// values {1, nanoseconds waited so far}, labels lock, mode, waiter_tid and
// (when known) holder_tid.
absl::StatusOr<std::string> HeldLocksPprof();

// "<function> <file>:<line>" of the first frame of `pcs` that is not
// lockprof's, or "?" if none resolves.
std::string FirstUserFrame(const uintptr_t* pcs, int depth);

// The name of thread `tid` of this process ("" if it has exited).
std::string ThreadName(int64_t tid);
// The same, for a line of text: control bytes, quotes and backslashes
// escaped as in QuotedName (base/strings.h).
std::string PrintableThreadName(int64_t tid);
// `name`, escaped as PrintableThreadName escapes a thread's.
std::string PrintableName(std::string_view name);
// "thread T (name)", or "thread T" if it has no name; for a thread that has
// exited, with the name it had then (`exited_name`): "thread T (name,
// exited)".
std::string ThreadLabel(int64_t tid, const char* exited_name = nullptr);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_DEADLOCK_REPORTS_H_
