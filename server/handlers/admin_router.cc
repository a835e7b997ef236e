#include "lockprof/server/handlers/admin_router.h"

#include <string>

#include "lockprof/agent/base/strings.h"
#include "lockprof/server/handlers/contention_page.h"
#include "lockprof/server/handlers/deadlock_handlers.h"
#include "lockprof/server/handlers/html_escape.h"
#include "lockprof/server/handlers/metrics_handlers.h"
#include "lockprof/server/handlers/symbol_handlers.h"

namespace lockprof::server {

Response RouteAdminRequest(const Request& request, const PprofOptions& pprof) {
  if (agent::StartsWith(request.path, "/debug/pprof/")) return HandlePprof(request, pprof);
  if (request.path == "/debug/pprof") {
    // Go's ServeMux redirects a subtree's root without its slash, keeping
    // the query.
    const std::string target = "/debug/pprof/" + (request.query.empty() ? "" : "?" + request.query);
    Response r =
        PlainResponse(301, "<a href=\"" + HtmlEscape(target) + "\">Moved Permanently</a>.\n\n");
    r.content_type = "text/html; charset=utf-8";
    r.headers.emplace_back("Location", target);
    return r;
  }
  if (request.path == "/metrics") return HandleMetrics(request);
  // go tool pprof symbolizes a profile fetched from outside /debug/pprof/
  // (the held-locks profile) through /symbolz, the same protocol.
  if (request.path == "/symbolz") return HandleSymbol(request);
  if (request.path == kLockOrderPath) return HandleLockOrder(request);
  if (request.path == kHeldLocksPath) return HandleHeldLocks(request);
  if (agent::StartsWith(request.path, "/debug/lockprof/"))
    return HandleContentionPage(request, pprof);
  return PlainResponse(404, "404 page not found\n");
}

}  // namespace lockprof::server
