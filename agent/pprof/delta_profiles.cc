#include "lockprof/agent/delta_profiles.h"

#include "lockprof/agent/pprof/deltas.h"

namespace lockprof {

DeltaProfiler::DeltaProfiler(std::string_view name) {
  if (const agent::ProfileInfo* info = agent::FindProfile(name)) {
    increments_ = std::make_unique<agent::ProfileIncrements>(*info);
  }
}

DeltaProfiler::~DeltaProfiler() = default;

absl::Status DeltaProfiler::WriteTo(std::ostream& out) {
  if (increments_ == nullptr) return absl::NotFoundError("Unknown profile");
  absl::StatusOr<std::string> profile = increments_->Next();
  if (!profile.ok()) return profile.status();
  out << *profile;
  return out ? absl::OkStatus() : absl::UnknownError("write failed");
}

}  // namespace lockprof
