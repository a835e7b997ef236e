#include "lockprof/agent/base/env.h"

#include <unistd.h>  // environ

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "lockprof/agent/base/parse.h"

namespace lockprof::agent {

std::optional<std::string> EnvValue(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::string EnvString(const char* name) { return EnvValue(name).value_or(""); }

std::string OptionOrEnv(const std::string& value, const char* env) {
  return value.empty() ? EnvString(env) : value;
}

bool ParseEnvInt(const char* name, int64_t min, int64_t max, int64_t* out) {
  const char* raw = std::getenv(name);
  if (raw == nullptr) return false;
  std::optional<int64_t> v = ParseInt(raw, min, max);
  if (!v) {
    std::fprintf(stderr, "lockprof: ignoring %s=\"%s\": want an integer in [%lld, %lld]\n", name,
                 raw, static_cast<long long>(min), static_cast<long long>(max));
    return false;
  }
  *out = *v;
  return true;
}

std::vector<std::string> UnknownEnvNames(std::string_view prefix,
                                         std::initializer_list<std::string_view> known) {
  std::vector<std::string> unknown;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string_view name = entry.substr(0, entry.find('='));
    if (name.substr(0, prefix.size()) != prefix) continue;
    if (std::find(known.begin(), known.end(), name) == known.end()) unknown.emplace_back(name);
  }
  return unknown;
}

bool ReadEnvIntAtStart(const char* name, int64_t min, int64_t max, std::atomic<int64_t>* out) {
  int64_t v;
  if (ParseEnvInt(name, min, max, &v)) out->store(v, std::memory_order_relaxed);
  return true;
}

}  // namespace lockprof::agent
