// Access control for the admin endpoint: the optional bearer token.
//
// A profile reveals function names, lock names and the shape of a
// program's work; an endpoint reachable by others (TLS on a non-loopback
// address, or a shared host) can require a secret. The check runs once per
// request, before any route, so no path (404s included) answers anything
// but 401 to a client without the token.
#ifndef LOCKPROF_SERVER_HANDLERS_ADMIN_SECURITY_H_
#define LOCKPROF_SERVER_HANDLERS_ADMIN_SECURITY_H_

#include <string>
#include <string_view>

namespace lockprof::server {

// Whether `a` and `b` are equal, taking time that depends on their lengths
// only, never on where they first differ: a client timing 401s learns
// nothing about the token's prefix.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Whether an Authorization header value carries `token`: "Bearer <token>"
// (scheme case-insensitive, as RFC 7235 says). `token` must not be empty.
bool BearerTokenMatches(std::string_view authorization, std::string_view token);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_ADMIN_SECURITY_H_
