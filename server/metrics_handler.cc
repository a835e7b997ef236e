#include "lockprof/server/metrics_handler.h"

#include "lockprof/agent/metrics.h"
#include "lockprof/agent/prometheus_text.h"

namespace lockprof::server {

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
  return r;
}

}  // namespace lockprof::server
