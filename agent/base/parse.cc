#include "lockprof/agent/base/parse.h"

namespace lockprof::agent {

std::optional<int64_t> ParseInt(std::string_view text, int64_t min, int64_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  bool negative = false;
  size_t i = 0;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    i = 1;
    if (text.size() == 1) return std::nullopt;
  }
  // Accumulate as a negative number so INT64_MIN parses without overflow.
  int64_t value = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    int digit = c - '0';
    if (value < (INT64_MIN + digit) / 10) return std::nullopt;
    value = value * 10 - digit;
  }
  if (!negative) {
    if (value == INT64_MIN) return std::nullopt;
    value = -value;
  }
  if (value < min || value > max) return std::nullopt;
  return value;
}

bool ParseHostPort(std::string_view text, std::string* host, int* port, std::string* error) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    *error = "want HOST:PORT, e.g. 127.0.0.1:6060";
    return false;
  }
  std::string_view h = text.substr(0, colon);
  std::string_view p = text.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h.empty()) h = "127.0.0.1";
  if (h.find_first_of(" /?#[]") != std::string_view::npos) {
    *error = "malformed host \"" + std::string(h) + "\"";
    return false;
  }
  std::optional<int64_t> v = ParseInt(p, 0, 65535);
  if (!v) {
    *error = "port must be an integer in [0, 65535], got \"" + std::string(p) + "\"";
    return false;
  }
  *host = std::string(h);
  *port = int(*v);
  return true;
}

}  // namespace lockprof::agent
