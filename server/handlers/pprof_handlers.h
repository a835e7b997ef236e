// The /debug/pprof/ handlers, with Go's net/http/pprof behaviour: paths,
// parameters, headers, status codes and error texts.
#ifndef LOCKPROF_SERVER_HANDLERS_PPROF_HANDLERS_H_
#define LOCKPROF_SERVER_HANDLERS_PPROF_HANDLERS_H_

#include <cstdint>

#include "lockprof/server/handlers/http_types.h"

namespace lockprof::server {

struct PprofOptions {
  // Longest ?seconds=N window served; a longer one gets Go's reply to a
  // window that would outlast the server's WriteTimeout (400 "profile
  // duration exceeds server's WriteTimeout"). 0: no limit.
  int64_t max_profile_seconds = 300;
  // Most ?seconds=N windows waiting at once among the requests served with
  // a limit (the built-in server's: each holds one of its threads for its
  // duration); more are answered 503 with Retry-After. 0: no limit, and the
  // window takes no room from those with one (a host's own server).
  int max_open_windows = 0;
};

// Serves any path under /debug/pprof/: the index, each profile (cumulative,
// ?debug=1 text, or ?seconds=N delta), the godeltaprof-style delta_<profile>
// endpoints, symbol and cmdline, and Go's error replies for everything else.
// A ?seconds=N request blocks the calling thread for N seconds, or until
// request.cancelled() says to give up.
Response HandlePprof(const Request& request, const PprofOptions& options = {});

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_PPROF_HANDLERS_H_
