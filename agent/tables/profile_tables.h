// The agent's profiles: one StackTable per profile, and what each one's
// values mean. Shared by the recorder (writes) and every reader (profile
// builders, delta endpoints, the uploader, metrics).
#ifndef LOCKPROF_AGENT_TABLES_PROFILE_TABLES_H_
#define LOCKPROF_AGENT_TABLES_PROFILE_TABLES_H_

#include <string_view>

#include "lockprof/agent/tables/stack_table.h"

namespace lockprof::agent {

enum class ProfileId { kMutex = 0, kBlock = 1, kHold = 2, kCas = 3 };
inline constexpr int kProfileCount = 4;

struct ProfileInfo {
  ProfileId id;
  const char* name;               // Endpoint name: /debug/pprof/<name>.
  const char* description;        // For the index page.
  const char* value_types[2][2];  // {type, unit} of each sample value.
  const char* legacy_header;      // "--- mutex:" line of the debug=1 text.
  bool legacy_has_period;         // Whether the text has "sampling period=".
};

const ProfileInfo& Info(ProfileId id);
// nullptr if no profile has that name.
const ProfileInfo* FindProfile(std::string_view name);
StackTable& Table(ProfileId id);
// The sampling period in effect for a profile (for "sampling period=").
int64_t CurrentPeriod(ProfileId id);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_TABLES_PROFILE_TABLES_H_
