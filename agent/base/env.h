// Reading lockprof's environment variables: the one place that calls
// getenv (and so the one to look at for what the environment can change).
#ifndef LOCKPROF_AGENT_BASE_ENV_H_
#define LOCKPROF_AGENT_BASE_ENV_H_

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockprof::agent {

// The value of environment variable `name`; nullopt if it is unset.
std::optional<std::string> EnvValue(const char* name);

// The value of environment variable `name`, or "" if it is unset.
std::string EnvString(const char* name);

// `value` if it is not empty, else the environment variable `env` (or "" if
// that is unset): an option set in code wins over the environment.
std::string OptionOrEnv(const std::string& value, const char* env);

// Reads environment variable `name` as an integer in [min, max]. Returns
// false if it is unset. A malformed value is reported once on stderr
// ("lockprof: ignoring NAME=...: ...") and false is returned.
bool ParseEnvInt(const char* name, int64_t min, int64_t max, int64_t* out);

// The names of the environment variables that start with `prefix` and are
// not in `known`: a misspelt setting (LOCKPROF_PYROSCOPE_APP_NAME for
// LOCKPROF_PYROSCOPE_APP) would otherwise be ignored without a word.
std::vector<std::string> UnknownEnvNames(std::string_view prefix,
                                         std::initializer_list<std::string_view> known);

// ParseEnvInt into *out (left as it is if unset or malformed), for a
// setting read once during static initialisation, not by a lock's first
// event: that comes on any thread at any time, and getenv can crash while
// another thread of the program calls setenv. Returns true, so that
//   [[maybe_unused]] const bool g_read = ReadEnvIntAtStart(...);
// runs it at start.
bool ReadEnvIntAtStart(const char* name, int64_t min, int64_t max, std::atomic<int64_t>* out);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_BASE_ENV_H_
