#include "lockprof/agent/pyroscope/uploader_config.h"

#include <errno.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "absl/strings/match.h"
#include "lockprof/agent/base/env.h"
#include "lockprof/agent/base/parse.h"
#include "lockprof/agent/base/service.h"

namespace lockprof {

namespace {

using agent::pyroscope::Labels;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// The uploader's settings (agent/uploader.h), each named once: read below,
// and every other LOCKPROF_PYROSCOPE_ name warned of.
constexpr char kPrefix[] = "LOCKPROF_PYROSCOPE_";
constexpr char kUrl[] = "LOCKPROF_PYROSCOPE_URL";
constexpr char kApp[] = "LOCKPROF_PYROSCOPE_APP";
constexpr char kLabels[] = "LOCKPROF_PYROSCOPE_LABELS";
constexpr char kHeaders[] = "LOCKPROF_PYROSCOPE_HEADERS";
constexpr char kUser[] = "LOCKPROF_PYROSCOPE_BASIC_AUTH_USER";
constexpr char kPassword[] = "LOCKPROF_PYROSCOPE_BASIC_AUTH_PASSWORD";
constexpr char kBearer[] = "LOCKPROF_PYROSCOPE_BEARER_TOKEN";
constexpr char kTenant[] = "LOCKPROF_PYROSCOPE_TENANT_ID";
constexpr char kInterval[] = "LOCKPROF_PYROSCOPE_INTERVAL";
constexpr char kProfiles[] = "LOCKPROF_PYROSCOPE_PROFILES";

// "a=b,c=d" -> pairs. An empty string is no pairs.
// `secret_values`: the values may be secrets (headers), and an item after
// the first, which may be the end of the previous one's value (a value with
// a comma), is not quoted in an error.
absl::Status ParsePairs(const char* var, std::string_view text, Labels* out, bool secret_values) {
  for (int n = 1; !text.empty(); ++n) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      const std::string fix = " is not NAME=VALUE (write NAME=VALUE,NAME2=VALUE2";
      if (secret_values && n > 1) {
        return Invalid(std::string(var) + ": item " + std::to_string(n) + fix +
                       "; a value cannot contain ',')");
      }
      // Quoted up to the first character that may start a value (a header
      // written "Authorization: Bearer tok" must not print the token).
      const std::string_view name = item.substr(0, item.find_first_of(": \t"));
      return Invalid(std::string(var) + ": the item starting \"" + std::string(name) + "\"" + fix +
                     ")");
    }
    out->emplace_back(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
    text = comma == std::string_view::npos ? "" : text.substr(comma + 1);
  }
  return absl::OkStatus();
}

}  // namespace

namespace agent {

absl::Status MakeUploaderConfig(const UploaderOptions& o, UploaderConfig* config) {
  UploaderConfig c;
  c.options = o;
  if (o.url.empty()) return Invalid("the Pyroscope URL is empty (e.g. http://pyroscope:4040)");
  if (absl::Status s = pyroscope::ParseEndpoint(o.url, &c.endpoint); !s.ok()) return s;
  if (absl::Status s = pyroscope::ValidateAppName(o.app_name); !s.ok()) return s;
  if (absl::Status s = pyroscope::ValidateLabels(o.labels); !s.ok()) return s;
  c.series_name = pyroscope::SeriesName(o.app_name, o.labels);

  const bool basic = !o.basic_auth_user.empty() || !o.basic_auth_password.empty();
  if (basic && (o.basic_auth_user.empty() || o.basic_auth_password.empty())) {
    return Invalid("basic auth needs both a user and a password");
  }
  if (basic && !o.bearer_token.empty()) {
    return Invalid("both basic auth and a bearer token are set: choose one");
  }
  // The first colon ends the user (RFC 7617): the server would read the
  // rest as the password's start, and answer 401.
  if (o.basic_auth_user.find(':') != std::string::npos) {
    return Invalid("the basic auth user must not contain ':'");
  }
  if (basic) {
    c.headers.emplace_back("Authorization", "Basic " + pyroscope::Base64(o.basic_auth_user + ":" +
                                                                         o.basic_auth_password));
  } else if (!o.bearer_token.empty()) {
    c.headers.emplace_back("Authorization", "Bearer " + o.bearer_token);
  }
  if (!o.tenant_id.empty()) c.headers.emplace_back("X-Scope-OrgID", o.tenant_id);
  const size_t own = c.headers.size();
  for (const auto& [name, value] : o.headers) {
    if (absl::Status s = pyroscope::ValidateHeader(name, value); !s.ok()) return s;
    // Sent twice, a header's two values reach the server in an order it
    // does not promise to read: one setting each.
    for (size_t i = 0; i < c.headers.size(); ++i) {
      if (!absl::EqualsIgnoreCase(c.headers[i].first, name)) continue;
      return Invalid(i < own ? "header \"" + name +
                                   "\" is set by the uploader's own settings (basic auth, bearer "
                                   "token, tenant id): use those, or this header, not both"
                             : "header \"" + name + "\" is given twice: give it once");
    }
    c.headers.emplace_back(name, value);
  }
  for (const auto& [name, value] : c.headers) {
    if (absl::Status s = pyroscope::ValidateHeader(name, value); !s.ok()) return s;
  }

  if (o.profiles.empty()) {
    for (int i = 0; i < kProfileCount; ++i) c.profiles.push_back(ProfileId(i));
  }
  for (const std::string& name : o.profiles) {
    const ProfileInfo* info = FindProfile(name);
    if (info == nullptr) {
      return Invalid("unknown profile \"" + name + "\" (choose from mutex, block, hold, cas)");
    }
    // Listed twice, each interval would be uploaded twice, and Pyroscope
    // would add the two.
    if (std::find(c.profiles.begin(), c.profiles.end(), info->id) != c.profiles.end()) {
      return Invalid("profile \"" + name + "\" is listed twice");
    }
    c.profiles.push_back(info->id);
  }
  if (o.interval.count() <= 0) return Invalid("the upload interval must be positive");
  if (o.request_timeout.count() <= 0) return Invalid("the request timeout must be positive");
  if (o.max_attempts < 1) return Invalid("max_attempts must be at least 1");
  if (o.backoff_base.count() < 0 || o.backoff_max < o.backoff_base) {
    return Invalid("backoff: need 0 <= backoff_base <= backoff_max");
  }
  if (o.queue_capacity < 1) return Invalid("queue_capacity must be at least 1");
  if (o.shutdown_timeout.count() < 0) return Invalid("shutdown_timeout must not be negative");
  // Added to the clock: a huge one (milliseconds::max(), a common "never")
  // would overflow it, and an interval would come round at once, forever.
  constexpr std::chrono::hours kLongest(24);
  if (o.interval > kLongest || o.request_timeout > kLongest || o.backoff_max > kLongest ||
      o.shutdown_timeout > kLongest) {
    return Invalid(
        "interval, request_timeout, backoff_max and shutdown_timeout must be at most a day");
  }
  *config = std::move(c);
  return absl::OkStatus();
}

void ApplyEnvironmentUrl(const UploaderOptions& options, UploaderConfig* config) {
  const std::optional<std::string> env = EnvValue(kUrl);
  if (!env || *env == options.url) return;
  UploaderOptions o = options;
  o.url = *env;
  UploaderConfig from_env;
  std::string message;
  if (absl::Status s = MakeUploaderConfig(o, &from_env); s.ok()) {
    *config = std::move(from_env);
    message = "uploading to " + pyroscope::RedactUrl(*env) + " from " + kUrl + ", not " +
              pyroscope::RedactUrl(options.url) + " given in code: the environment wins the URL";
  } else {
    message = std::string(kUrl) + "=\"" + pyroscope::RedactUrl(*env) +
              "\": " + std::string(s.message()) + "; uploading to " +
              pyroscope::RedactUrl(options.url) + " given in code instead";
  }
  if (options.log != nullptr) {
    options.log(message);
  } else {
    ReportPrecedence("uploader", message);
  }
}

}  // namespace agent

absl::Status UploaderOptionsFromEnvironment(UploaderOptions* options) {
  UploaderOptions o;
  o.url = agent::EnvString(kUrl);
  if (o.url.empty()) return absl::NotFoundError(std::string(kUrl) + " is not set");
  for (const std::string& name :
       agent::UnknownEnvNames(kPrefix, {kUrl, kApp, kLabels, kHeaders, kUser, kPassword, kBearer,
                                        kTenant, kInterval, kProfiles})) {
    // Not fatal (the uploader still starts), but said: a misspelt token's
    // uploads go out unauthenticated, a misspelt name's under another.
    std::fprintf(stderr,
                 "lockprof: uploader: ignoring %s: not a setting (agent/uploader.h lists them)\n",
                 name.c_str());
  }
  o.app_name = agent::EnvString(kApp);
  if (o.app_name.empty()) {
    // The program's name, in the characters an application name may have
    // ("my+tool" would stop the uploader; the name is only a default).
    o.app_name = program_invocation_short_name;
    for (char& c : o.app_name) {
      if (!agent::pyroscope::IsAppNameChar(c)) c = '_';
    }
  }
  if (absl::Status s = ParsePairs(kLabels, agent::EnvString(kLabels), &o.labels, false); !s.ok()) {
    return s;
  }
  if (absl::Status s = ParsePairs(kHeaders, agent::EnvString(kHeaders), &o.headers, true);
      !s.ok()) {
    return s;
  }
  o.basic_auth_user = agent::EnvString(kUser);
  o.basic_auth_password = agent::EnvString(kPassword);
  o.bearer_token = agent::EnvString(kBearer);
  o.tenant_id = agent::EnvString(kTenant);
  const std::string interval = agent::EnvString(kInterval);
  if (!interval.empty()) {
    std::optional<int64_t> s = agent::ParseInt(interval, 1, 86400);
    if (!s) {
      return Invalid(std::string(kInterval) + "=\"" + interval +
                     "\": want whole seconds in [1, 86400]");
    }
    o.interval = std::chrono::seconds(*s);
  }
  const std::string profiles = agent::EnvString(kProfiles);
  std::string_view list = profiles;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    o.profiles.emplace_back(list.substr(0, comma));
    list = comma == std::string_view::npos ? "" : list.substr(comma + 1);
  }
  *options = std::move(o);
  return absl::OkStatus();
}

}  // namespace lockprof
