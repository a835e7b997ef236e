#include "lockprof/server/handlers/deadlock_handlers.h"

#include <string>

#include "lockprof/agent/deadlock/reports.h"
#include "lockprof/server/handlers/query_params.h"

namespace lockprof::server {
namespace {

enum class Format { kText, kJson, kPprof, kBad };

// ?format=text|json, and (held only) ?debug=0 for pprof, ?debug=1 for text
// as the pprof endpoints spell it.
Format RequestedFormat(const Request& req, bool pprof_allowed) {
  Format f = Format::kText;
  if (const std::string* format = req.Param("format")) {
    if (*format == "json") {
      f = Format::kJson;
    } else if (*format != "text") {
      return Format::kBad;
    }
  }
  if (const std::string* debug = req.Param("debug")) {
    const std::optional<int> d = ParseDebugParam(*debug);
    if (!d.has_value() || (*d == 0 && !pprof_allowed)) return Format::kBad;
    if (*d == 0) f = Format::kPprof;
  }
  return f;
}

Response Body(Format f, std::string body) {
  Response r;
  if (f == Format::kJson) r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

Response BadMethod() {
  Response r = ErrorResponse(405, "Method Not Allowed");
  r.headers.emplace_back("Allow", "GET, HEAD");
  return r;
}

}  // namespace

Response HandleLockOrder(const Request& req) {
  if (req.method != "GET" && req.method != "HEAD") return BadMethod();
  const Format f = RequestedFormat(req, false);
  if (f == Format::kBad) return ErrorResponse(400, "format must be text or json");
  return Body(f, f == Format::kJson ? agent::LockOrderJson() : agent::LockOrderText());
}

Response HandleHeldLocks(const Request& req) {
  if (req.method != "GET" && req.method != "HEAD") return BadMethod();
  const Format f = RequestedFormat(req, true);
  if (f == Format::kBad) {
    return ErrorResponse(400, "format must be text or json; debug must be 0 (pprof) or 1 (text)");
  }
  if (f == Format::kPprof) {
    absl::StatusOr<std::string> profile = agent::HeldLocksPprof();
    if (!profile.ok()) return ErrorResponse(500, std::string(profile.status().message()));
    return AttachmentResponse(std::move(*profile), "held");
  }
  return Body(f, f == Format::kJson ? agent::HeldLocksJson() : agent::HeldLocksText());
}

}  // namespace lockprof::server
