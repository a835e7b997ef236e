#include "lockprof/server/handlers/metrics_handlers.h"

#include "lockprof/agent/metrics.h"
#include "lockprof/agent/metrics/prometheus_text.h"
#include "lockprof/server/httplib/connection_guard.h"
#include "lockprof/server/httplib/request_limit_counters.h"

namespace lockprof::server {

namespace {

// The endpoint's own defences: counted in server/, which the agent's writer
// does not see (the agent does not include the server).
void WriteAdminMetrics(std::string* out) {
  agent::PromText text(out);
  text.Family("lockprof_admin_connections_timed_out_total", "counter",
              "Admin endpoint connections closed because the client missed a deadline: the "
              "whole request within read_timeout_ms, or the response within write_timeout_ms.");
  text.Sample("lockprof_admin_connections_timed_out_total", {}, ConnectionsTimedOut());
  text.Family("lockprof_admin_connections_refused_total", "counter",
              "Admin endpoint connections closed for the cap of max_connections: a new one "
              "closed as soon as accepted, or an idle one evicted for a new one.");
  text.Sample("lockprof_admin_connections_refused_total", {}, ConnectionsRefused());
  text.Family("lockprof_admin_connections_open", "gauge",
              "Admin endpoint connections queued or being served now (this scrape's "
              "included), of at most max_connections (and those evicted, until closed).");
  text.Sample("lockprof_admin_connections_open", {}, ConnectionsOpen());
  text.Family("lockprof_admin_requests_cut_total", "counter",
              "Admin endpoint requests cut by a size limit: limit=\"head\" (request line and "
              "headers over max_request_head_bytes: 431), limit=\"body\" (a chunked body's "
              "framing over max_request_bytes + max_request_head_bytes: 413).");
  text.Sample("lockprof_admin_requests_cut_total", {{"limit", "head"}}, RequestHeadsCut());
  text.Sample("lockprof_admin_requests_cut_total", {{"limit", "body"}}, RequestBodiesCut());
}

}  // namespace

Response HandleMetrics(const Request& request) {
  Response r;
  if (request.method != "GET" && request.method != "HEAD") {
    r.status = 405;
    r.headers.emplace_back("Allow", "GET, HEAD");
    r.body = "Method Not Allowed\n";
    return r;
  }
  r.content_type = agent::kPrometheusContentType;
  WriteMetrics(&r.body);
  WriteAdminMetrics(&r.body);
  return r;
}

}  // namespace lockprof::server
