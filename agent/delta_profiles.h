// Delta profiles: what a profile gained over a span of time, as gzipped
// profile.proto.
//
// Computed on the raw tables, slot by slot: nothing is serialised, parsed or
// merged to find the difference, and only the samples that changed are
// symbolized and encoded. That is what makes a scrape every 15 seconds cheap,
// where Go's ?seconds=N collects, encodes, decodes and merges two whole
// cumulative profiles (the cost godeltaprof exists to avoid). The admin
// endpoint serves the same increments at /debug/pprof/delta_<profile>, and
// Go's ?seconds=N windows on every profile.
#ifndef LOCKPROF_AGENT_DELTA_PROFILES_H_
#define LOCKPROF_AGENT_DELTA_PROFILES_H_

#include <memory>
#include <ostream>
#include <string_view>

#include "absl/status/status.h"
#include "lockprof/agent/base/export.h"

namespace lockprof {

namespace agent {
class ProfileIncrements;
}  // namespace agent

// Reports profile `name` ("mutex", "block", "hold", "cas") in increments, as
// grafana/pyroscope-go's godeltaprof does for Go's mutex and block profiles.
// Each WriteTo reports what accumulated since the previous WriteTo on the
// same object, so a scraper calling it at any cadence sees every event
// exactly once.
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
// slot of the profile's table, kept between calls.
class LOCKPROF_EXPORT DeltaProfiler {
 public:
  // An unknown name makes every WriteTo fail with NotFoundError.
  explicit DeltaProfiler(std::string_view name);
  ~DeltaProfiler();
  DeltaProfiler(const DeltaProfiler&) = delete;
  DeltaProfiler& operator=(const DeltaProfiler&) = delete;

  // Writes the increment since the previous call as gzipped profile.proto.
  absl::Status WriteTo(std::ostream& out);

 private:
  std::unique_ptr<agent::ProfileIncrements> increments_;  // Null for an unknown name.
};

}  // namespace lockprof

#endif  // LOCKPROF_AGENT_DELTA_PROFILES_H_
