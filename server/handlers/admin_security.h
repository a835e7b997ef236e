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

#include "lockprof/server/handlers/http_types.h"

namespace lockprof::server {

// Whether `a` and `b` are equal, taking time that depends on their lengths
// only, never on where they first differ: a client timing 401s learns
// nothing about the token's prefix.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// Whether an Authorization header value carries `token`: "Bearer <token>"
// (scheme case-insensitive, as RFC 7235 says). `token` must not be empty.
bool BearerTokenMatches(std::string_view authorization, std::string_view token);

// Whether a request for `path` carrying this Authorization header value may
// be answered, where `token` ("" for none) is required. The contention
// page's HTML holds no data and is answered without it: a browser loads the
// page, then the page sends the token on its own requests. Both servers
// (the built-in one and HandleAdminRequest) ask this, before routing.
bool RequestAuthorised(std::string_view path, std::string_view authorization,
                       std::string_view token);

// The answer to a request that is not: 401 with a Bearer challenge.
Response UnauthorisedResponse();

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_ADMIN_SECURITY_H_
