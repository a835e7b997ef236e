// Pyroscope's ingest protocol, as its own Go client (grafana/pyroscope-go)
// speaks it, and the rules its server applies to what it receives:
//
//   POST {url}/ingest?aggregationType=&from=<ns>&name=<app>{k=v,...}
//        &sampleRate=0&spyName=lockprof&units=&until=<ns>
//   Content-Type: multipart/form-data; boundary=<60 hex digits>
//   parts: "profile" (file profile.pprof: gzipped profile.proto) and
//          "sample_type_config" (file sample_type_config.json)
//
// Query parameters are sorted and escaped as Go's url.Values.Encode does;
// from/until are Unix nanoseconds (the server reads 19 digits as ns). The
// sample_type_config maps each sample type to its display name and units;
// the server files a profile under the metric its display names name
// ("mutex_…" -> mutex, "block_…" -> block; hold and cas are lockprof's own:
// hold_count/hold_duration and cas_retries/cas_duration).
//
// Pure functions: no I/O, unit-tested without a server.
#ifndef LOCKPROF_AGENT_PYROSCOPE_PYROSCOPE_PROTOCOL_H_
#define LOCKPROF_AGENT_PYROSCOPE_PYROSCOPE_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent::pyroscope {

using Labels = std::vector<std::pair<std::string, std::string>>;

// The spyName lockprof reports (the server's pyroscope_spy label).
inline constexpr char kSpyName[] = "lockprof";

// Server-side limits the validation applies: Pyroscope's defaults.
inline constexpr size_t kMaxLabelNameLength = 1024;
inline constexpr size_t kMaxLabelValueLength = 2048;
// 30 label names per series, of which the server adds 4 (__name__,
// __delta__, service_name, pyroscope_spy).
inline constexpr size_t kMaxUserLabels = 26;

struct Endpoint {
  std::string scheme;     // "http" or "https".
  std::string host;       // Without brackets for IPv6.
  int port = 0;           // Explicit, or 80/443.
  std::string base_path;  // "" or "/prefix" (no trailing slash).

  // "http://host:port", as cpp-httplib's client takes it.
  std::string Origin() const;
  // base_path + "/ingest".
  std::string IngestPath() const { return base_path + "/ingest"; }
};

// `url` as messages may show it: user info replaced by "***", and the query
// or fragment too ("https://***@host/p?***"): either may hold a secret.
std::string RedactUrl(std::string_view url);

// Parses "http[s]://host[:port][/path]". Rejects other schemes, user
// info, queries and fragments, with a message saying what to change.
absl::Status ParseEndpoint(std::string_view url, Endpoint* out);

// The application name (Pyroscope's service_name): non-empty, of letters,
// digits and "_.-/" (IsAppNameChar).
absl::Status ValidateAppName(std::string_view app);
bool IsAppNameChar(char c);

// Static labels sent with every profile: Prometheus label names not
// starting with "__" nor set by the server, non-empty UTF-8 values without
// ',', '{', '}' or surrounding spaces (the name syntax has no escaping), no
// duplicates, at most kMaxUserLabels.
absl::Status ValidateLabels(const Labels& labels);

// An HTTP header the user adds: a token name, a value without CR or LF.
absl::Status ValidateHeader(std::string_view name, std::string_view value);

// "app{k1=v1,k2=v2}", keys sorted, as pyroscope-go normalises it.
std::string SeriesName(std::string_view app, const Labels& labels);

// Go's url.QueryEscape.
std::string QueryEscape(std::string_view s);

// The query string (with its leading '?') of one upload.
std::string IngestQuery(const std::string& series_name, int64_t from_ns, int64_t until_ns);

// The sample_type_config JSON for profile `id`, keys sorted as Go's
// encoding/json writes a map.
std::string SampleTypeConfig(ProfileId id);

// Display names for a profile's two sample types.
struct DisplayNames {
  const char* count;
  const char* duration;
};
DisplayNames DisplayNamesFor(ProfileId id);

struct MultipartBody {
  std::string content_type;  // multipart/form-data; boundary=...
  std::string body;
};

// The request body: byte for byte what Go's mime/multipart writes for
// CreateFormFile("profile", "profile.pprof") and
// CreateFormFile("sample_type_config", "sample_type_config.json").
MultipartBody BuildMultipart(std::string_view profile, std::string_view sample_type_config,
                             std::string_view boundary);

// 60 random hex digits, as Go's multipart.Writer picks.
std::string RandomBoundary();

// Standard base64 with padding (for Basic auth).
std::string Base64(std::string_view data);

}  // namespace lockprof::agent::pyroscope

#endif  // LOCKPROF_AGENT_PYROSCOPE_PYROSCOPE_PROTOCOL_H_
