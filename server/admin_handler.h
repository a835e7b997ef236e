// Serve lockprof's admin paths from your own HTTP server: a transport-free
// entry point for hosts that already run an admin server (brpc's builtin
// services, an Envoy-style admin listener, a gRPC service's HTTP side) and
// would rather not open another port.
//
//   // In your server's handler for /debug/pprof/*, /debug/lockprof/* and /metrics:
//   lockprof::AdminRequest req;
//   req.method = http_req.method();           // "GET"
//   req.path = http_req.path();               // "/debug/pprof/mutex", decoded
//   req.query = http_req.raw_query();         // "seconds=5", undecoded
//   req.authorization = http_req.header("Authorization");
//   req.body = http_req.body();               // POST /debug/pprof/symbol
//   lockprof::AdminResponse res = lockprof::HandleAdminRequest(req);
//   http_res.set_status(res.status);
//   for (auto& [name, value] : res.headers) http_res.set_header(name, value);
//   http_res.set_body(res.body);
//
// Every path the built-in server (admin_server.h) serves is answered with
// the same bytes: /debug/pprof/ exactly as Go's net/http/pprof, lockprof's
// own profiles, /metrics, the contention page (/debug/lockprof/). Mount it
// at the root of the host's URL space (go tool pprof and Pyroscope's
// scrapers expect /debug/pprof/...), or strip your prefix from `path`. TLS,
// connection limits and timeouts are the host's; the token check is
// lockprof's, as in the built-in server (which serves the page's HTML, and
// only that, without the token).
//
// A ?seconds=N window waits N seconds before it answers. A host that can
// answer later (an asynchronous server) should call HandleAdminRequestAsync,
// which holds none of the host's threads while the window is open.
//
// Thread-safety: both functions may be called from any number of threads at
// once. Cost: building a profile runs on the calling thread (or, for the
// asynchronous form, on lockprof's), never on an application thread holding
// a lock.
#ifndef LOCKPROF_SERVER_ADMIN_HANDLER_H_
#define LOCKPROF_SERVER_ADMIN_HANDLER_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "lockprof/agent/base/export.h"

namespace lockprof {

struct AdminRequest {
  std::string method = "GET";
  // The decoded path, without the query: "/debug/pprof/mutex".
  std::string path;
  // The query as sent, undecoded, without the '?': "seconds=5&debug=1".
  std::string query;
  // The Authorization header's value, "" if none.
  std::string authorization;
  std::string body;
  // Optional: returns true once the client has gone away, so that a
  // ?seconds=N window ends early (polled about every 100 ms), and so does a
  // long /debug/pprof/symbol lookup (polled every 64 addresses).
  std::function<bool()> cancelled;
};

struct AdminResponse {
  int status = 200;
  // Content-Type first, then whatever else the path sends (Go's
  // X-Go-Pprof, Content-Disposition, WWW-Authenticate, Location).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct AdminHandlerOptions {
  // Secret every request must carry as "Authorization: Bearer <token>";
  // without it, every path answers 401. Empty: LOCKPROF_ADMIN_TOKEN if set
  // (read once, at the first request), else no token.
  std::string token{};
  // Longest ?seconds=N window served (longer: Go's 400). 0: no limit.
  int max_profile_seconds = 300;
};

// Answers `request` on the calling thread.
LOCKPROF_EXPORT AdminResponse HandleAdminRequest(const AdminRequest& request,
                                                 const AdminHandlerOptions& options = {});

// Answers `request` by calling `done` exactly once: on the calling thread,
// before returning, when the answer is immediate (a 401, or 503 when more
// than 64 asynchronous requests are in progress, or a window when 32
// windows are: the rest are kept for everything else), otherwise on a thread of
// lockprof's own. At exit, open windows end early and their answers are
// delivered before lockprof's exit handler returns (it waits at most 2 s).
// `done` must not throw: on lockprof's thread an exception ends the process
// (std::terminate), as on any thread it would escape.
LOCKPROF_EXPORT void HandleAdminRequestAsync(AdminRequest request,
                                             std::function<void(AdminResponse)> done,
                                             const AdminHandlerOptions& options = {});

}  // namespace lockprof

#endif  // LOCKPROF_SERVER_ADMIN_HANDLER_H_
