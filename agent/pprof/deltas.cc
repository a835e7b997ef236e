#include "lockprof/agent/pprof/deltas.h"

#include <mutex>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/pprof/profile_builder.h"
#include "lockprof/agent/record/clock.h"

namespace lockprof::agent {

ProfileWindow::ProfileWindow(const ProfileInfo& info) : info_(info), start_mono_(MonotonicNanos()) {
  ProfileTable(info.id).Snapshot(&start_);
}

absl::StatusOr<std::string> ProfileWindow::Build() const {
  BuildOptions options;
  options.since = &start_;
  options.duration_nanos = MonotonicNanos() - start_mono_;
  return BuildProfile(info_, options);
}

namespace {

// One for every ProfileIncrements: held only for a snapshot. Held across
// fork(), so that a child's first delta does not wait for a parent thread
// that was taking one.
std::mutex& IncrementsMutex() {
  static std::mutex* const mu = NewMutexHeldAcrossFork(ForkRank::kDeltas);
  return *mu;
}

}  // namespace

absl::StatusOr<std::string> ProfileIncrements::Next() {
  std::vector<SlotValues> delta;
  {
    std::lock_guard<std::mutex> lock(IncrementsMutex());
    delta = tracker_.Next();
  }
  // Keys are stable for the life of the process: building outside the lock
  // lets a slow symbolization overlap the next caller's snapshot.
  BuildOptions options;
  options.delta = &delta;
  return BuildProfile(info_, options);
}

}  // namespace lockprof::agent
