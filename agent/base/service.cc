#include "lockprof/agent/base/service.h"

#include <cstdio>
#include <string>

namespace lockprof::agent {

bool AutoStartFromEnvironment(const char* what, absl::Status (*start)()) {
  const absl::Status s = start();
  if (!s.ok() && !absl::IsNotFound(s)) {
    std::fprintf(stderr, "lockprof: %s: %s\n", what, std::string(s.message()).c_str());
  }
  return s.ok();
}

}  // namespace lockprof::agent
