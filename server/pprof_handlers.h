// The /debug/pprof/ handlers, with Go's net/http/pprof behaviour: paths,
// parameters, headers, status codes and error texts.
#ifndef LOCKPROF_SERVER_PPROF_HANDLERS_H_
#define LOCKPROF_SERVER_PPROF_HANDLERS_H_

#include "lockprof/server/http_types.h"

namespace lockprof::server {

// Serves any path under /debug/pprof/: the index, each profile, and Go's
// error replies for everything else.
Response HandlePprof(const Request& request);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_PPROF_HANDLERS_H_
