// Where this process's uploads stand: for each profile, what the last
// upload included (a DeltaTracker), and when the last interval ended.
//
// Process-wide, not per uploader, so that each upload carries only what is
// new since the process's previous upload of that profile, whoever sent it:
// an uploader started after another one stopped continues where that one
// ended (a new one that started from zero would send the process's whole
// history again, which Pyroscope adds to what it already has). As
// godeltaprof, the first upload of a process carries everything since it
// started.
//
// In a fork()ed child the tables hold the parent's history, which the
// parent uploads: the child's first uploader starts from what the tables
// hold when it starts (the child's events before that are not uploaded).
//
// Guarded by the uploader slot's mutex (uploader.cc), which the caller
// holds; it is held across fork().
#ifndef LOCKPROF_AGENT_PYROSCOPE_UPLOAD_POSITIONS_H_
#define LOCKPROF_AGENT_PYROSCOPE_UPLOAD_POSITIONS_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "lockprof/agent/tables/delta.h"
#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {

struct Positions {
  std::vector<DeltaTracker> trackers;  // Those of the profiles uploaded.
  std::vector<DeltaTracker> spare;     // Of profiles uploaded once, not now.
  int64_t last_until_ns = 0;           // Wall clock; 0 before the first upload.
};

// The end of an upload interval that starts at `from_ns` (wall clock), when
// the wall clock reads `wall_now_ns` and `elapsed_ns` (a monotonic clock's)
// passed since the interval before ended: the wall clock, unless it was
// stepped back to `from_ns` or before it (NTP, a virtual machine resumed),
// where the interval still ends after it starts, by the time that passed:
// intervals stay contiguous, and Pyroscope, which refuses one whose `from`
// is after its `until` (losing its data), takes it.
inline int64_t IntervalEnd(int64_t from_ns, int64_t wall_now_ns, int64_t elapsed_ns) {
  if (wall_now_ns > from_ns) return wall_now_ns;
  return from_ns + (elapsed_ns > 0 ? elapsed_ns : 1);
}

// The same positions, for an uploader of `profiles`: their trackers in that
// order (a new one, from the start, for a profile never uploaded), the
// others spare.
Positions ForProfiles(Positions positions, const std::vector<ProfileId>& profiles);

class UploadPositions {
 public:
  // Waits, releasing `lock`, while the positions are out with an uploader
  // that is stopping (its last upload is not yet collected) or starting,
  // until running() (one is installed): a start racing a stop continues
  // from where that stop ends.
  template <typename Running>
  void WaitForStop(std::unique_lock<std::mutex>& lock, Running running) {
    returned_.wait(lock, [&] { return !out_ || running(); });
  }

  // The exit flush's wait: the same, until the deadline of the stop in
  // progress (Stopping) at most.
  template <typename Running>
  void WaitForStopUntilItsDeadline(std::unique_lock<std::mutex>& lock, Running running) {
    returned_.wait_until(lock, stop_deadline_, [&] { return !out_ || running(); });
  }

  // An uploader is stopping, until `deadline` at most.
  void Stopping(std::chrono::steady_clock::time_point deadline) { stop_deadline_ = deadline; }

  // An uploader was installed: a start waiting above can see it.
  void Started() { returned_.notify_all(); }

  // Takes the positions for an uploader (which picks its profiles' with
  // ForProfiles); `now_ns` is the start of its first interval when none
  // ended before.
  Positions Take(int64_t now_ns);

  // Gives them back when that uploader stopped.
  void Give(Positions positions);

  // In a forked child (inside fork(): sets flags only): the parent's
  // uploader, whose positions these are, does not exist here.
  void ForgetInChild();

 private:
  Positions stored_;
  bool out_ = false;       // With a running or stopping uploader.
  bool in_child_ = false;  // Forked since: the stored positions are the parent's.
  std::chrono::steady_clock::time_point stop_deadline_;
  std::condition_variable returned_;
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PYROSCOPE_UPLOAD_POSITIONS_H_
