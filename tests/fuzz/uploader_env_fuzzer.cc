// Fuzzes the uploader's configuration from the environment:
// UploaderOptionsFromEnvironment (LOCKPROF_PYROSCOPE_*: URL, labels and
// header lists, interval, profile list) and its validation
// (MakeUploaderConfig: ParseEndpoint, ValidateAppName, ValidateLabels,
// ValidateHeader). Input: the variables' values, separated by NUL bytes, in
// the order of kVariables. Beyond not crashing: a configuration accepted is
// one Pyroscope accepts (an http(s) endpoint with a port, a URL that parses
// back to the same endpoint, a non-empty series name).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lockprof/agent/pyroscope/pyroscope_protocol.h"
#include "lockprof/agent/pyroscope/uploader_config.h"
#include "lockprof/agent/uploader.h"

namespace {

constexpr const char* kVariables[] = {
    "LOCKPROF_PYROSCOPE_URL",
    "LOCKPROF_PYROSCOPE_APP",
    "LOCKPROF_PYROSCOPE_LABELS",
    "LOCKPROF_PYROSCOPE_HEADERS",
    "LOCKPROF_PYROSCOPE_INTERVAL",
    "LOCKPROF_PYROSCOPE_PROFILES",
    "LOCKPROF_PYROSCOPE_TENANT_ID",
    "LOCKPROF_PYROSCOPE_BEARER_TOKEN",
    "LOCKPROF_PYROSCOPE_BASIC_AUTH_USER",
    "LOCKPROF_PYROSCOPE_BASIC_AUTH_PASSWORD",
};

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "uploader_env_fuzzer: %s\n", what);
  __builtin_trap();
}

void CheckConfig(const lockprof::agent::UploaderConfig& c) {
  const auto& e = c.endpoint;
  if (e.scheme != "http" && e.scheme != "https") Fail("scheme");
  if (e.port <= 0 || e.port > 65535) Fail("port");
  if (e.host.empty()) Fail("host");
  if (c.series_name.empty() || c.profiles.empty()) Fail("series or profiles");
  lockprof::agent::pyroscope::Endpoint again;
  if (!lockprof::agent::pyroscope::ParseEndpoint(e.Origin() + e.base_path, &again).ok() ||
      again.scheme != e.scheme || again.host != e.host || again.port != e.port ||
      again.base_path != e.base_path) {
    Fail("accepted endpoint does not round-trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (const char* name : kVariables) {
    const size_t nul = rest.find('\0');
    if (rest.empty()) {
      unsetenv(name);
    } else {
      setenv(name, std::string(rest.substr(0, nul)).c_str(), 1);
    }
    rest = nul == std::string_view::npos ? "" : rest.substr(nul + 1);
  }
  lockprof::UploaderOptions options;
  if (!lockprof::UploaderOptionsFromEnvironment(&options).ok()) return 0;
  lockprof::agent::UploaderConfig config;
  if (lockprof::agent::MakeUploaderConfig(options, &config).ok()) CheckConfig(config);
  return 0;
}
