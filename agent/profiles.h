// Reading lockprof's profiles programmatically, as Go's
// pprof.Lookup(name).WriteTo(w, debug).
//
// Profiles: "mutex" (time others waited, at the stack that released the
// lock), "block" (time spent waiting, at the waiter's stack), "hold"
// (sampled critical sections) and "cas" (lockprof::Atomic retry loops).
// All values are cumulative since the process started and already scaled by
// their sampling rates. A fork()ed child inherits them: its profiles start
// with everything the parent had recorded, then record only the child.
#ifndef LOCKPROF_AGENT_PROFILES_H_
#define LOCKPROF_AGENT_PROFILES_H_

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "lockprof/agent/base/export.h"

namespace lockprof {

// Writes profile `name`: debug == 0 writes gzipped profile.proto, debug > 0
// the legacy text form. Returns NotFoundError for an unknown name,
// InvalidArgumentError for a negative debug and InternalError if the profile
// could not be compressed (nothing is written then). Safe to call from any thread,
// concurrently with recording; application threads never wait for it.
LOCKPROF_EXPORT absl::Status WriteProfile(std::string_view name, int debug, std::ostream& out);

// Names of the profiles WriteProfile knows, in index order.
LOCKPROF_EXPORT std::vector<std::string> ProfileNames();

// Number of distinct samples (stack + labels) currently in profile `name`,
// or -1 if there is no such profile. Cheap: no symbolization.
LOCKPROF_EXPORT int64_t ProfileSampleCount(std::string_view name);

}  // namespace lockprof

#endif  // LOCKPROF_AGENT_PROFILES_H_
