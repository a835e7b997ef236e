#include "lockprof/agent/base/service.h"

#include <cstdio>
#include <string>

namespace lockprof::agent {

namespace {
// Set while a static initialiser starts a service from the environment:
// the slot records it, so that a start from code may take that one over.
thread_local bool t_starting_from_environment = false;
}  // namespace

bool StartingFromEnvironment() { return t_starting_from_environment; }

bool AutoStartFromEnvironment(const char* what, absl::Status (*start)()) {
  t_starting_from_environment = true;
  const absl::Status s = start();
  t_starting_from_environment = false;
  if (!s.ok() && !absl::IsNotFound(s)) {
    std::fprintf(stderr, "lockprof: %s: %s\n", what, std::string(s.message()).c_str());
  }
  return s.ok();
}

void ReportPrecedence(const char* what, const std::string& message) {
  std::fprintf(stderr, "lockprof: %s: %s\n", what, message.c_str());
}

}  // namespace lockprof::agent
