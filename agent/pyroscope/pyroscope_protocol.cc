#include "lockprof/agent/pyroscope/pyroscope_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

#include "lockprof/agent/base/parse.h"
#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/record/sampler.h"

namespace lockprof::agent::pyroscope {

namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string CharMessage(char c) {
  char buf[16];
  if (c >= 0x20 && c < 0x7F) {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "byte 0x%02x", static_cast<unsigned char>(c));
  }
  return buf;
}

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

absl::Status ValidateLabelName(std::string_view name) {
  if (name.empty()) return Invalid("a label has an empty name");
  if (name.size() > kMaxLabelNameLength) {
    return Invalid("label name " + Quote(name.substr(0, 40)) + "... is longer than " +
                   std::to_string(kMaxLabelNameLength) + " characters");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '_' || (IsAlnum(c) && !(i == 0 && c >= '0' && c <= '9'))) continue;
    return Invalid("label name " + Quote(name) + ": " + CharMessage(c) +
                   " is not allowed; label names must match [a-zA-Z_][a-zA-Z0-9_]* "
                   "(Pyroscope stores them as Prometheus labels)");
  }
  if (name.substr(0, 2) == "__") {
    return Invalid("label name " + Quote(name) +
                   ": names starting with \"__\" are reserved for Pyroscope");
  }
  if (name == "service_name" || name == "pyroscope_spy") {
    return Invalid("label name " + Quote(name) +
                   " is set by Pyroscope itself (service_name is the app name): use another");
  }
  return absl::OkStatus();
}

// Whether the code point at `s`'s start (or, with `last`, its end) is one
// that Go's unicode.IsSpace counts, which the server's strings.TrimSpace
// removes: ASCII's, U+0085, U+00A0, and the separators U+1680,
// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000. `s` is UTF-8.
bool SpaceAtEnd(std::string_view s, bool last) {
  size_t at = 0;
  if (last) {
    at = s.size() - 1;
    while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80) --at;
  }
  const std::string_view cp =
      s.substr(at, last ? std::string_view::npos : Utf8SequenceLength(s, 0));
  if (cp.size() == 1) return std::string_view(" \t\n\v\f\r").find(cp[0]) != std::string_view::npos;
  uint32_t v = static_cast<unsigned char>(cp[0]) & (0xFF >> (cp.size() + 1));
  for (size_t i = 1; i < cp.size(); ++i) v = (v << 6) | (static_cast<unsigned char>(cp[i]) & 0x3F);
  return v == 0x85 || v == 0xA0 || v == 0x1680 || (v >= 0x2000 && v <= 0x200A) || v == 0x2028 ||
         v == 0x2029 || v == 0x202F || v == 0x205F || v == 0x3000;
}

absl::Status ValidateLabelValue(std::string_view name, std::string_view value) {
  const std::string which = "label " + Quote(name) + ": value " + Quote(value);
  if (value.empty()) return Invalid("label " + Quote(name) + " has an empty value");
  if (value.size() > kMaxLabelValueLength) {
    return Invalid("label " + Quote(name) + ": value is longer than " +
                   std::to_string(kMaxLabelValueLength) + " bytes");
  }
  if (!IsValidUtf8(value)) return Invalid(which + " is not valid UTF-8");
  if (SpaceAtEnd(value, false) || SpaceAtEnd(value, true)) {
    return Invalid(which + " starts or ends with white space (Pyroscope would trim it)");
  }
  for (char c : value) {
    if (c == ',' || c == '{' || c == '}' || c == '\n' || c == '\r') {
      return Invalid(which + ": " + CharMessage(c) +
                     " is not allowed (it ends a label in Pyroscope's name{k=v,...} syntax)");
    }
  }
  return absl::OkStatus();
}

bool IsTokenChar(char c) {
  return IsAlnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

std::string Endpoint::Origin() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string RedactUrl(std::string_view url) {
  const size_t sep = url.find("://");
  const size_t start = sep == std::string_view::npos ? 0 : sep + 3;
  std::string out(url.substr(0, start));
  std::string_view rest = url.substr(start);
  // User info ends at the last '@': a password may hold '/', '?', '#' or
  // another '@' (cutting at the first of those first quoted "alice:pa" of
  // "http://alice:pa#ss@host").
  const size_t at = url.rfind('@');
  if (at != std::string_view::npos && at >= start) {
    // A query or fragment before it: the '@' may be the query's, or the
    // password's; nothing after the scheme can be told safe to show.
    if (url.find_first_of("?#", start) < at) return out + "***";
    out += "***";
    rest = url.substr(at);
  }
  const size_t query = rest.find_first_of("?#");
  out += rest.substr(0, query);
  if (query != std::string_view::npos) out += rest[query] == '?' ? "?***" : "#***";
  return out;
}

absl::Status ParseEndpoint(std::string_view url, Endpoint* out) {
  const std::string hint = " (expected http://host[:port][/path], e.g. http://pyroscope:4040)";
  // Quoted with its user info and query hidden: they may hold a password or
  // an API key, and this message goes to the program's log.
  const std::string shown = Quote(RedactUrl(url));
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return Invalid("URL " + shown + " has no scheme" + hint);
  Endpoint e;
  e.scheme = std::string(url.substr(0, sep));
  if (e.scheme != "http" && e.scheme != "https") {
    return Invalid("URL " + shown + ": scheme must be http or https" + hint);
  }
  std::string_view rest = url.substr(sep + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return Invalid("URL " + shown + " must not have a query or a fragment" + hint);
  }
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  // Anywhere after the scheme, not only in the authority as cut at its
  // first '/': a password may hold a '/', and the host and port parsed from
  // "alice:pa/ss@host" would quote its start in the error.
  if (rest.find('@') != std::string_view::npos) {
    return Invalid("URL " + shown + ": put credentials in the basic auth options, not in the URL");
  }
  e.port = e.scheme == "https" ? 443 : 80;
  std::string host_port(authority);
  if (!authority.empty() && authority.back() != ']' &&
      authority.find(':') != std::string_view::npos) {
    // host:port (or [v6]:port): ParseHostPort checks both parts.
    std::string error;
    if (!ParseHostPort(authority, &e.host, &e.port, &error) || e.port == 0 ||
        authority.front() == ':') {
      return Invalid("URL " + shown + ": " + (error.empty() ? "bad host or port" : error) + hint);
    }
  } else {
    e.host = authority.size() > 1 && authority.front() == '['
                 ? std::string(authority.substr(1, authority.size() - 2))
                 : std::string(authority);
  }
  if (e.host.empty()) return Invalid("URL " + shown + " has no host" + hint);
  // A ':' in a host is an IPv6 address's, which a URL writes in brackets
  // ("http://a:b:80" is not host "a:b").
  in6_addr v6;
  if (e.host.find(':') != std::string::npos &&
      (authority.front() != '[' || inet_pton(AF_INET6, e.host.c_str(), &v6) != 1)) {
    return Invalid("URL " + shown + ": host \"" + e.host + "\" is not an IPv6 address in brackets" +
                   hint);
  }
  for (char c : e.host) {
    if (!IsAlnum(c) && c != '.' && c != '-' && c != ':' && c != '_') {
      return Invalid("URL " + shown + ": host has " + CharMessage(c) + hint);
    }
  }
  // The path goes into the request line as written (IngestClient does not
  // encode it again): only what a URL path may hold, '%' escapes included.
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (!IsAlnum(c) && std::string_view("-._~!$&'()*+,;=:/%").find(c) == std::string_view::npos) {
      return Invalid("URL " + shown + ": path has " + CharMessage(c) +
                     " (write it percent-encoded)" + hint);
    }
    // A '%' that starts no escape: every request line would be refused
    // (400) at each upload instead of the URL once, here.
    if (c == '%' &&
        (i + 2 >= path.size() || !std::isxdigit(static_cast<unsigned char>(path[i + 1])) ||
         !std::isxdigit(static_cast<unsigned char>(path[i + 2])))) {
      return Invalid("URL " + shown + ": path has a '%' not followed by two hex digits" + hint);
    }
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  e.base_path = std::string(path);
  *out = e;
  return absl::OkStatus();
}

bool IsAppNameChar(char c) { return IsAlnum(c) || c == '_' || c == '.' || c == '-' || c == '/'; }

absl::Status ValidateAppName(std::string_view app) {
  if (app.empty()) {
    return Invalid(
        "the application name is empty: set it to your service's name (letters, digits and "
        "\"_.-/\"), e.g. \"checkout-service\"");
  }
  for (char c : app) {
    if (IsAppNameChar(c)) continue;
    return Invalid("application name " + Quote(app) + ": " + CharMessage(c) +
                   " is not allowed (use letters, digits and \"_.-/\"; put other "
                   "attributes in labels)");
  }
  if (app.size() > kMaxLabelValueLength) {
    return Invalid("application name is longer than " + std::to_string(kMaxLabelValueLength));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabels(const Labels& labels) {
  if (labels.size() > kMaxUserLabels) {
    return Invalid(std::to_string(labels.size()) + " labels: Pyroscope accepts at most " +
                   std::to_string(kMaxUserLabels) + " besides its own");
  }
  std::set<std::string_view> seen;
  for (const auto& [name, value] : labels) {
    if (absl::Status s = ValidateLabelName(name); !s.ok()) return s;
    if (absl::Status s = ValidateLabelValue(name, value); !s.ok()) return s;
    if (!seen.insert(name).second) return Invalid("label " + Quote(name) + " is given twice");
  }
  return absl::OkStatus();
}

absl::Status ValidateHeader(std::string_view name, std::string_view value) {
  const size_t bad = size_t(std::find_if_not(name.begin(), name.end(), IsTokenChar) - name.begin());
  if (name.empty() || bad < name.size()) {
    // Quoted up to the character that is not allowed: what follows may be a
    // secret ("Authorization: Bearer tok==" splits at its padding's '=').
    return Invalid("HTTP header name " + Quote(name.substr(0, bad)) +
                   (bad < name.size() ? " is followed by a character a header name cannot have"
                                      : " is empty") +
                   " (write NAME=VALUE)");
  }
  if (value.find_first_of("\r\n") != std::string_view::npos) {
    return Invalid("HTTP header " + Quote(name) + ": the value contains a line break");
  }
  return absl::OkStatus();
}

std::string SeriesName(std::string_view app, const Labels& labels) {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  std::string out(app);
  out += '{';
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0) out += ',';
    out += sorted[i].first + "=" + sorted[i].second;
  }
  out += '}';
  return out;
}

std::string QueryEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    if (IsAlnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      const auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string IngestQuery(const std::string& series_name, int64_t from_ns, int64_t until_ns) {
  // pyroscope-go's mutex and block jobs leave SampleRate, Units and
  // AggregationType unset: Go still encodes them, empty or zero.
  return "?aggregationType=&from=" + std::to_string(from_ns) + "&name=" + QueryEscape(series_name) +
         "&sampleRate=0&spyName=" + kSpyName + "&units=&until=" + std::to_string(until_ns);
}

DisplayNames DisplayNamesFor(ProfileId id) {
  switch (id) {
    case ProfileId::kMutex:
      return {"mutex_count", "mutex_duration"};
    case ProfileId::kBlock:
      return {"block_count", "block_duration"};
    case ProfileId::kHold:
      return {"hold_count", "hold_duration"};
    case ProfileId::kCas:
      return {"cas_retries", "cas_duration"};
  }
  return {"", ""};
}

std::string SampleTypeConfig(ProfileId id) {
  const ProfileInfo& info = ProfileInfoFor(id);
  const DisplayNames names = DisplayNamesFor(id);
  // {type: {"units":..., "display-name":...}}, in key order.
  std::pair<std::string, std::string> entries[2] = {
      {info.value_types[0][0],
       "{\"units\":\"lock_samples\",\"display-name\":\"" + std::string(names.count) + "\"}"},
      {info.value_types[1][0],
       "{\"units\":\"lock_nanoseconds\",\"display-name\":\"" + std::string(names.duration) + "\"}"},
  };
  std::sort(std::begin(entries), std::end(entries));
  return "{\"" + entries[0].first + "\":" + entries[0].second + ",\"" + entries[1].first +
         "\":" + entries[1].second + "}";
}

MultipartBody BuildMultipart(std::string_view profile, std::string_view sample_type_config,
                             std::string_view boundary) {
  const std::string b(boundary);
  auto part = [&](std::string_view field, std::string_view file, std::string_view content) {
    return "Content-Disposition: form-data; name=\"" + std::string(field) + "\"; filename=\"" +
           std::string(file) + "\"\r\nContent-Type: application/octet-stream\r\n\r\n" +
           std::string(content);
  };
  MultipartBody m;
  m.content_type = "multipart/form-data; boundary=" + b;
  m.body = "--" + b + "\r\n" + part("profile", "profile.pprof", profile) + "\r\n--" + b + "\r\n" +
           part("sample_type_config", "sample_type_config.json", sample_type_config) + "\r\n--" +
           b + "--\r\n";
  return m;
}

std::string RandomBoundary() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  while (out.size() < 60) {
    uint64_t r = NextRandom();
    for (int i = 0; i < 16 && out.size() < 60; ++i, r >>= 4) out += kHex[r & 15];
  }
  return out;
}

std::string Base64(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(data[i])) << 16 | uint32_t(uint8_t(data[i + 1])) << 8 |
                       uint8_t(data[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(v >> shift) & 63];
  }
  if (i < data.size()) {
    uint32_t v = uint32_t(uint8_t(data[i])) << 16;
    if (i + 1 < data.size()) v |= uint32_t(uint8_t(data[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace lockprof::agent::pyroscope
