// Building a profile: the one path from a profile's table to the bytes
// served, written or uploaded (as tcmalloc's profile_builder).
//
//   snapshot of the table (or values computed against it, see delta.h)
//     -> Resolve (resolved_profile.h: merge, symbolize, trim, sort)
//     -> EncodePprof + Gzip (pprof_encoder.h), or WriteTextProfile
//        (text_profile.h) for debug=1.
//
// Used by WriteProfile and the /debug/pprof/<profile> handler (cumulative),
// ProfileWindow and ProfileIncrements (deltas.h) and the Pyroscope uploader.
// Runs on the caller's thread (an HTTP worker, the uploader), never on an
// application thread: it symbolizes (cached per address) and allocates, and
// reads the table without making recording threads wait.
#ifndef LOCKPROF_AGENT_PPROF_PROFILE_BUILDER_H_
#define LOCKPROF_AGENT_PPROF_PROFILE_BUILDER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {

struct BuildOptions {
  // 0: gzipped profile.proto. > 0: Go's legacy debug=1 text.
  int debug = 0;
  // What the profile holds, at most one of:
  //  * neither: the profile's table as it is now (the cumulative profile);
  //  * since: the table now minus this earlier snapshot of it (a window);
  //  * delta: these values as they are, already computed against the table
  //    (a DeltaTracker's Next()).
  const std::vector<SlotValues>* since = nullptr;
  const std::vector<SlotValues>* delta = nullptr;
  // The profile's time_nanos (wall clock); 0: now.
  int64_t time_nanos = 0;
  // The profile's duration_nanos; 0: none (cumulative profiles, and
  // godeltaprof-style increments, which Go writes without one).
  int64_t duration_nanos = 0;
  // If set, called on each sample's string labels before they are encoded:
  // the uploader fits them to Pyroscope's rules (pyroscope_labels.h).
  std::function<void(std::vector<std::pair<std::string, std::string>>*)> fit_labels;
};

// Builds profile `info` as `options` say. Errors: InvalidArgument for a
// negative debug, Internal if compression fails. Thread-safe.
absl::StatusOr<std::string> BuildProfile(const ProfileInfo& info, const BuildOptions& options = {});

// Distinct samples (stack + labels) with a non-zero value in profile
// `info`'s table now. Cheap: no symbolization. Thread-safe.
int64_t CountSamples(const ProfileInfo& info);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PPROF_PROFILE_BUILDER_H_
