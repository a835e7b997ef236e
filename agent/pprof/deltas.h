// Delta profiles, the agent's side: what a profile gained over a span of
// time, as gzipped profile.proto.
//
// Both kinds are computed on the raw tables, slot by slot (see delta.h):
// nothing is serialised, parsed or merged to find the difference, and only
// the samples that changed are symbolized and encoded. That is what makes a
// scrape every 15 seconds cheap, where Go's ?seconds=N collects, encodes,
// decodes and merges two whole cumulative profiles (the cost godeltaprof
// exists to avoid).
//
//  * ProfileWindow: Go's ?seconds=N. A window opened now and closed when
//    built; any number may be open at once, independently.
//  * ProfileIncrements: godeltaprof's model, behind lockprof::DeltaProfiler
//    (agent/delta_profiles.h) and /debug/pprof/delta_<profile>.
#ifndef LOCKPROF_AGENT_PPROF_DELTAS_H_
#define LOCKPROF_AGENT_PPROF_DELTAS_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "lockprof/agent/tables/delta.h"
#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {

// A window on one profile, for ?seconds=N: the constructor takes the first
// snapshot; Build takes the second and builds the difference, with
// time_nanos = the end of the window and duration_nanos = its length. Holds
// one snapshot (32 bytes per used slot). Not thread-safe; each request owns
// its window.
class ProfileWindow {
 public:
  explicit ProfileWindow(const ProfileInfo& info);

  // May be called more than once: each call ends the window anew.
  absl::StatusOr<std::string> Build() const;

 private:
  const ProfileInfo& info_;
  int64_t start_mono_;
  std::vector<SlotValues> start_;
};

// What one profile gained since the previous Next() (the first call: since
// the process started), with the cumulative profile's sample types, period
// and labels, time_nanos set to the time of the call and no duration (as
// godeltaprof); samples that did not change are left out.
//
// Thread-safe: concurrent calls are serialised on an internal std::mutex
// that only this object's callers take (recording threads never wait for
// it); each increment is reported by exactly one call. Memory: 16 bytes per
// slot of the profile's table (see stack_table.h), kept between calls.
class ProfileIncrements {
 public:
  explicit ProfileIncrements(const ProfileInfo& info) : info_(info), tracker_(info.id) {}
  ProfileIncrements(const ProfileIncrements&) = delete;
  ProfileIncrements& operator=(const ProfileIncrements&) = delete;

  absl::StatusOr<std::string> Next();

 private:
  const ProfileInfo& info_;
  DeltaTracker tracker_;  // Guarded by a mutex of all ProfileIncrements' (deltas.cc).
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PPROF_DELTAS_H_
