#include "lockprof/server/handlers/admin_security.h"

#include "lockprof/server/handlers/contention_page.h"

namespace lockprof::server {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Every byte of the longer string is visited, and differences are
  // accumulated rather than returned early; a length mismatch is folded in
  // the same way.
  const size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= unsigned(x ^ y);
  }
  // volatile keeps the compiler from turning the loop into an early exit.
  volatile unsigned result = diff;
  return result == 0;
}

bool BearerTokenMatches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "bearer ";
  if (token.empty() || authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (c != kScheme[i]) return false;
  }
  std::string_view presented = authorization.substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ') presented.remove_suffix(1);
  return ConstantTimeEquals(presented, token);
}

bool RequestAuthorised(std::string_view path, std::string_view authorization,
                       std::string_view token) {
  return token.empty() || path == kContentionPagePath || BearerTokenMatches(authorization, token);
}

Response UnauthorisedResponse() {
  Response r;
  r.status = 401;
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  r.body = "Unauthorized\n";
  return r;
}

}  // namespace lockprof::server
