// The agent's profiles: one StackTable per profile, and what each one's
// values mean. Shared by the recorder (writes) and every reader (profile
// builders, delta endpoints, the uploader, metrics).
#ifndef LOCKPROF_AGENT_TABLES_PROFILE_TABLES_H_
#define LOCKPROF_AGENT_TABLES_PROFILE_TABLES_H_

#include <atomic>
#include <cstdint>
#include <string_view>

#include "lockprof/agent/record/sampler.h"
#include "lockprof/agent/tables/stack_table.h"

namespace lockprof::agent {

enum class ProfileId { kMutex = 0, kBlock = 1, kHold = 2, kCas = 3 };
inline constexpr int kProfileCount = 4;

// The sampling rate that governs profile `id` (see sampling.h): the mutex
// fraction for the mutex and CAS profiles, the block rate (ns) for the block
// profile, the hold rate for the hold profile. 0: that sampler is off. The
// one place that maps profiles to rates; inline, so that the recording path
// pays one relaxed load for it.
inline int64_t SamplingRate(ProfileId id) {
  switch (id) {
    case ProfileId::kMutex:
    case ProfileId::kCas:
      return g_rates.mutex_fraction.load(std::memory_order_relaxed);
    case ProfileId::kBlock:
      return g_rates.block_rate_ns.load(std::memory_order_relaxed);
    case ProfileId::kHold:
      return g_rates.hold_rate.load(std::memory_order_relaxed);
  }
  return 0;
}

struct ProfileInfo {
  ProfileId id;
  const char* name;               // Endpoint name: /debug/pprof/<name>.
  const char* description;        // Its line on the /debug/pprof/ index page.
  const char* value_types[2][2];  // {type, unit} of each sample value.
  // The first line of the debug=1 text: Go's "--- mutex:", and for the
  // others the legacy contention format's "--- contention:" (go tool pprof
  // reads no other header).
  const char* legacy_header;
  bool legacy_has_period;  // Whether the text has "sampling period=".

  // Whether the profile's sampler is on now.
  bool SamplerEnabled() const { return SamplingRate(id) > 0; }
  // The period in effect now, for the debug=1 text's "sampling period=": the
  // rate each recorded event was scaled by; 1 for the block profile, whose
  // events are weighted one by one.
  int64_t Period() const { return id == ProfileId::kBlock ? 1 : SamplingRate(id); }
};

// Every profile, in index order (indexed by ProfileId).
extern const ProfileInfo kProfiles[kProfileCount];

const ProfileInfo& ProfileInfoFor(ProfileId id);
// nullptr if no profile has that name.
const ProfileInfo* FindProfile(std::string_view name);
StackTable& ProfileTable(ProfileId id);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_TABLES_PROFILE_TABLES_H_
