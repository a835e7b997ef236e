// The uploader's validated configuration: UploaderOptions checked against
// what Pyroscope accepts, and everything derived from them once.
#ifndef LOCKPROF_AGENT_PYROSCOPE_UPLOADER_CONFIG_H_
#define LOCKPROF_AGENT_PYROSCOPE_UPLOADER_CONFIG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "lockprof/agent/pyroscope/pyroscope_protocol.h"
#include "lockprof/agent/tables/profile_tables.h"
#include "lockprof/agent/uploader.h"

namespace lockprof::agent {

struct UploaderConfig {
  UploaderOptions options;
  pyroscope::Endpoint endpoint;
  std::string series_name;  // app{labels}
  // Authorization, X-Scope-OrgID and the user's headers.
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<ProfileId> profiles;
};

// Checks `options`; on success fills *config. Messages say what to fix.
absl::Status MakeUploaderConfig(const UploaderOptions& options, UploaderConfig* config);

// The precedence rule (service.h): for a start from code,
// LOCKPROF_PYROSCOPE_URL, if set and valid, replaces the code's url; the
// code's other settings stay. Says once which URL is used.
void ApplyEnvironmentUrl(const UploaderOptions& options, UploaderConfig* config);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PYROSCOPE_UPLOADER_CONFIG_H_
