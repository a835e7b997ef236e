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
  if (std::optional<int64_t> v = agent::ParseInt(value, INT64_MIN, INT64_MAX)) return *v;
  // Out of range, Atoi returns the nearest int64 with its error.
  const bool negative = !value.empty() && value[0] == '-';
  const std::string_view digits =
      value.substr(!value.empty() && (value[0] == '-' || value[0] == '+'));
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) return 0;
  return negative ? INT64_MIN : INT64_MAX;
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `s` with '+' as a space and %XX decoded, as Go's url.QueryUnescape;
// false for a '%' not followed by two hex digits.
bool Unescape(std::string_view s, std::string* out) {
  out->clear();
  out->reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      *out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size() || HexDigit(s[i + 1]) < 0 || HexDigit(s[i + 2]) < 0) return false;
      *out += char(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else {
      *out += s[i];
    }
  }
  return true;
}

}  // namespace

std::multimap<std::string, std::string> DecodeQuery(std::string_view raw) {
  std::multimap<std::string, std::string> params;
  while (!raw.empty()) {
    const size_t amp = raw.find('&');
    const std::string_view pair = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    // As Go's url.ParseQuery, which net/http/pprof's FormValue uses: a
    // pair with a ';' (Go >= 1.17) or a bad escape is left out, not an error.
    if (pair.empty() || pair.find(';') != std::string_view::npos) continue;
    const size_t eq = pair.find('=');
    std::string key, value;
    if (!Unescape(pair.substr(0, eq), &key) ||
        (eq != std::string_view::npos && !Unescape(pair.substr(eq + 1), &value))) {
      continue;
    }
    params.emplace(std::move(key), std::move(value));
  }
  return params;
}

}  // namespace lockprof::server
