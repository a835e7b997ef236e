// One router for every admin path, whatever carries the request: the
// built-in server (admin_server.cc) and a host's own HTTP server
// (admin_handler.h) answer the same paths with the same bytes.
#ifndef LOCKPROF_SERVER_HANDLERS_ADMIN_ROUTER_H_
#define LOCKPROF_SERVER_HANDLERS_ADMIN_ROUTER_H_

#include "lockprof/server/handlers/http_types.h"
#include "lockprof/server/handlers/pprof_handlers.h"

namespace lockprof::server {

// /debug/pprof/* as Go's net/http/pprof serves it, /debug/pprof -> 301 to
// /debug/pprof/ (Go's ServeMux), /metrics; anything else 404 "404 page not
// found", as Go's ServeMux answers; and /debug/lockprof/*, the contention
// page (contention_page.h). Each handler answers its own methods.
// The caller has checked the token.
Response RouteAdminRequest(const Request& request, const PprofOptions& pprof);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_ADMIN_ROUTER_H_
