#include "lockprof/agent/profiles.h"

#include "lockprof/agent/pprof/profile_builder.h"

namespace lockprof {

absl::Status WriteProfile(std::string_view name, int debug, std::ostream& out) {
  const agent::ProfileInfo* info = agent::FindProfile(name);
  if (info == nullptr) return absl::NotFoundError("Unknown profile");
  agent::BuildOptions options;
  options.debug = debug;
  absl::StatusOr<std::string> profile = agent::BuildProfile(*info, options);
  if (!profile.ok()) return profile.status();
  out << *profile;
  return out ? absl::OkStatus() : absl::UnknownError("write failed");
}

std::vector<std::string> ProfileNames() {
  std::vector<std::string> names;
  for (const agent::ProfileInfo& info : agent::kProfiles) names.push_back(info.name);
  return names;
}

int64_t ProfileSampleCount(std::string_view name) {
  const agent::ProfileInfo* info = agent::FindProfile(name);
  return info == nullptr ? -1 : agent::CountSamples(*info);
}

}  // namespace lockprof
