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

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 &&
               HexDigit(s[i + 2]) >= 0) {
      out += char(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::multimap<std::string, std::string> DecodeQuery(std::string_view raw) {
  std::multimap<std::string, std::string> params;
  while (!raw.empty()) {
    const size_t amp = raw.find('&');
    const std::string_view pair = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    params.emplace(Unescape(pair.substr(0, eq)),
                   eq == std::string_view::npos ? std::string() : Unescape(pair.substr(eq + 1)));
  }
  return params;
}

}  // namespace lockprof::server
