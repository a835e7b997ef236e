#include "lockprof/server/handlers/query_params.h"

#include "lockprof/agent/base/parse.h"

namespace lockprof::server {

std::optional<int> ParseDebugParam(std::string_view value) {
  const std::optional<int64_t> v = agent::ParseInt(value, 0, 2);
  if (!v) return std::nullopt;
  return int(*v);
}

std::optional<int64_t> ParseSecondsParam(std::string_view value) {
  return agent::ParseInt(value, 1, INT64_MAX);
}

int64_t AtoiOrZero(std::string_view value) {
  return agent::ParseInt(value, INT64_MIN, INT64_MAX).value_or(0);
}

}  // namespace lockprof::server
