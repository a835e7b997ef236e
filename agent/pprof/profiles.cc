#include "lockprof/agent/profiles.h"

#include "lockprof/agent/pprof/pprof_encoder.h"
#include "lockprof/agent/pprof/resolved_profile.h"
#include "lockprof/agent/pprof/text_profile.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof {

absl::Status WriteProfile(std::string_view name, int debug, std::ostream& out) {
  const agent::ProfileInfo* info = agent::FindProfile(name);
  if (info == nullptr) return absl::NotFoundError("Unknown profile");
  if (debug < 0) return absl::InvalidArgumentError("debug must be >= 0");
  std::vector<agent::SlotValues> slots;
  agent::Table(info->id).Snapshot(&slots);
  agent::ResolvedProfile rp = agent::Resolve(*info, slots, agent::WallNanos(), 0);
  if (debug > 0) {
    agent::WriteTextProfile(rp, out);
  } else {
    out << agent::Gzip(agent::EncodePprof(rp));
  }
  return out ? absl::OkStatus() : absl::UnknownError("write failed");
}

std::vector<std::string> ProfileNames() {
  std::vector<std::string> names;
  for (int i = 0; i < agent::kProfileCount; ++i) {
    names.push_back(agent::Info(agent::ProfileId(i)).name);
  }
  return names;
}

int64_t ProfileSampleCount(std::string_view name) {
  const agent::ProfileInfo* info = agent::FindProfile(name);
  if (info == nullptr) return -1;
  std::vector<agent::SlotValues> slots;
  agent::Table(info->id).Snapshot(&slots);
  int64_t n = 0;
  for (const auto& s : slots) n += (s.values[0] != 0 || s.values[1] != 0);
  return n;
}

}  // namespace lockprof
