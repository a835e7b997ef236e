// Delta profiles: what a profile gained over a span of time, as gzipped
// profile.proto.
//
// Both kinds are computed on the raw tables, slot by slot (see delta.h):
// nothing is serialised, parsed or merged to find the difference, and only
// the samples that changed are symbolized and encoded. That is what makes a
// scrape every 15 seconds cheap, where Go's ?seconds=N collects, encodes,
// decodes and merges two whole cumulative profiles (the cost godeltaprof
// exists to avoid).
//
//  * DeltaProfiler: godeltaprof's model. Each WriteTo reports what
//    accumulated since the previous WriteTo on the same object, so a
//    scraper calling it at any cadence sees every event exactly once. Serves
//    /debug/pprof/delta_<profile>.
//  * agent::ProfileWindow: Go's ?seconds=N. A window opened now and closed
//    when written; any number may be open at once, independently.
#ifndef LOCKPROF_AGENT_DELTA_PROFILES_H_
#define LOCKPROF_AGENT_DELTA_PROFILES_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <ostream>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "lockprof/agent/base/export.h"
#include "lockprof/agent/tables/delta.h"

namespace lockprof {

// Reports profile `name` ("mutex", "block", "hold", "cas") in increments, as
// grafana/pyroscope-go's godeltaprof does for Go's mutex and block profiles.
//
//   static lockprof::DeltaProfiler mutex_delta("mutex");
//   mutex_delta.WriteTo(out);  // What the mutex profile gained since the last call.
//
// The output has the cumulative profile's sample types, period and labels,
// time_nanos set to the time of the call and no duration (as godeltaprof);
// samples that did not change are left out. Values are already scaled by
// the sampling rates, as in the cumulative profile.
//
// Thread-safe: concurrent calls are serialised on an internal std::mutex
// that only this object's callers take (recording threads never wait for
// it); each increment is reported by exactly one call. Memory: 16 bytes per
// slot of the profile's table (see stack_table.h), kept between calls.
class LOCKPROF_EXPORT DeltaProfiler {
 public:
  // An unknown name makes every WriteTo fail with NotFoundError.
  explicit DeltaProfiler(std::string_view name);
  DeltaProfiler(const DeltaProfiler&) = delete;
  DeltaProfiler& operator=(const DeltaProfiler&) = delete;

  // Writes the increment since the previous call as gzipped profile.proto.
  absl::Status WriteTo(std::ostream& out);

 private:
  const agent::ProfileInfo* info_;
  std::mutex mu_;
  std::unique_ptr<agent::DeltaTracker> tracker_;  // Guarded by mu_.
};

namespace agent {

// A window on one profile, for ?seconds=N: the constructor takes the first
// snapshot; WriteTo takes the second and writes the difference, with
// time_nanos = the end of the window and duration_nanos = its length. Holds
// one snapshot (32 bytes per used slot). Not thread-safe; each request owns
// its window.
class ProfileWindow {
 public:
  explicit ProfileWindow(const ProfileInfo& info);

  // May be called more than once: each call ends the window anew.
  absl::Status WriteTo(std::ostream& out) const;

 private:
  const ProfileInfo& info_;
  int64_t start_mono_;
  std::vector<SlotValues> start_;
};

}  // namespace agent
}  // namespace lockprof

#endif  // LOCKPROF_AGENT_DELTA_PROFILES_H_
