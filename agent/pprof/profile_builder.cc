#include "lockprof/agent/pprof/profile_builder.h"

#include <sstream>

#include "lockprof/agent/pprof/pprof_encoder.h"
#include "lockprof/agent/pprof/resolved_profile.h"
#include "lockprof/agent/pprof/text_profile.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/tables/delta.h"

namespace lockprof::agent {

absl::StatusOr<std::string> BuildProfile(const ProfileInfo& info, const BuildOptions& options) {
  if (options.debug < 0) return absl::InvalidArgumentError("debug must be >= 0");
  // The locks it takes (the symbolizer's, libdw's) are lockprof's own, on
  // whichever thread asks: never recorded as the program's.
  RecorderScope own;
  std::vector<SlotValues> slots;
  if (options.delta == nullptr) {
    ProfileTable(info.id).Snapshot(&slots);
    if (options.since != nullptr) slots = Subtract(slots, *options.since);
  }
  const std::vector<SlotValues>& values = options.delta != nullptr ? *options.delta : slots;
  const int64_t time_nanos = options.time_nanos != 0 ? options.time_nanos : WallNanos();
  ResolvedProfile rp = Resolve(info, values, time_nanos, options.duration_nanos);
  if (options.fit_labels) {
    for (ResolvedSample& s : rp.samples) options.fit_labels(&s.str_labels);
  }
  if (options.debug > 0) {
    std::ostringstream text;
    WriteTextProfile(rp, text);
    return text.str();
  }
  std::string gzipped = Gzip(EncodePprof(rp));
  if (gzipped.empty()) return absl::InternalError("failed to compress profile");
  return gzipped;
}

int64_t CountSamples(const ProfileInfo& info) {
  std::vector<SlotValues> slots;
  ProfileTable(info.id).Snapshot(&slots);
  // Duplicate slots of one key are one sample, as served.
  return CountResolvedSamples(slots);
}

}  // namespace lockprof::agent
