// GET /metrics: lockprof's Prometheus metrics (see agent/metrics.h).
#ifndef LOCKPROF_SERVER_METRICS_HANDLER_H_
#define LOCKPROF_SERVER_METRICS_HANDLER_H_

#include "lockprof/server/http_types.h"

namespace lockprof::server {

// Answers GET and HEAD with the text exposition format 0.0.4; other methods
// get 405 with an Allow header.
Response HandleMetrics(const Request& request);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_METRICS_HANDLER_H_
