// GET /metrics: lockprof's Prometheus metrics (see agent/metrics.h), and
// the admin endpoint's own: connections timed out and refused, requests cut
// by a size limit (lockprof_admin_connections_timed_out_total,
// lockprof_admin_connections_refused_total,
// lockprof_admin_requests_cut_total{limit="head"|"body"}).
#ifndef LOCKPROF_SERVER_HANDLERS_METRICS_HANDLERS_H_
#define LOCKPROF_SERVER_HANDLERS_METRICS_HANDLERS_H_

#include "lockprof/server/handlers/http_types.h"

namespace lockprof::server {

// Answers GET and HEAD with the text exposition format 0.0.4; other methods
// get 405 with an Allow header.
Response HandleMetrics(const Request& request);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_METRICS_HANDLERS_H_
