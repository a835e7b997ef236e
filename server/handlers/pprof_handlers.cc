#include "lockprof/server/handlers/pprof_handlers.h"

#include <sstream>
#include <string_view>

#include "lockprof/agent/profiles.h"
#include "lockprof/agent/tables/profile_tables.h"
#include "lockprof/server/handlers/delta_handlers.h"
#include "lockprof/server/handlers/query_params.h"
#include "lockprof/server/handlers/symbol_handlers.h"

namespace lockprof::server {

namespace {

constexpr std::string_view kPrefix = "/debug/pprof/";
// godeltaprof's endpoints: /debug/pprof/delta_<profile>.
constexpr std::string_view kDeltaPrefix = "delta_";

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Response Index() {
  std::ostringstream html;
  html << "<html>\n<head>\n<title>/debug/pprof/</title>\n</head>\n<body>\n"
       << "/debug/pprof/<br>\n<br>\nTypes of profiles available:\n"
       << "<table>\n<thead><td>Count</td><td>Profile</td></thead>\n";
  for (const std::string& name : ProfileNames()) {
    html << "<tr><td>" << ProfileSampleCount(name) << "</td><td><a href='" << HtmlEscape(name)
         << "?debug=1'>" << HtmlEscape(name) << "</a></td></tr>\n";
  }
  // Go lists its handler-only endpoints after the profiles, with count 0.
  for (const char* extra : {"cmdline", "symbol"}) {
    html << "<tr><td>0</td><td><a href='" << extra << "?debug=1'>" << extra << "</a></td></tr>\n";
  }
  html << "</table>\n<a href=\"goroutine?debug=2\"></a>\n<br>\n<p>\nProfile Descriptions:\n"
       << "<ul>\n"
       << "<li><div class=profile-name>block: </div> Stack traces that led to blocking on "
          "lockprof primitives, charged to the waiter</li>\n"
       << "<li><div class=profile-name>cas: </div> Stack traces of lockprof::Atomic "
          "compare-and-swap loops that retried</li>\n"
       << "<li><div class=profile-name>cmdline: </div> The command line invocation of the "
          "current program</li>\n"
       << "<li><div class=profile-name>hold: </div> Stack traces of critical sections, "
          "sampled, with how long the lock was held</li>\n"
       << "<li><div class=profile-name>mutex: </div> Stack traces of holders of contended "
          "mutexes, charged with the time others waited</li>\n"
       << "<li><div class=profile-name>symbol: </div> Maps the program counters listed in "
          "the request to function names</li>\n"
       << "</ul>\n</p>\n</body>\n</html>\n";
  Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = html.str();
  return r;
}

Response Profile(const std::string& name, const Request& req, const PprofOptions& options) {
  if (name.substr(0, kDeltaPrefix.size()) == kDeltaPrefix) {
    const agent::ProfileInfo* info = agent::FindProfile(name.substr(kDeltaPrefix.size()));
    if (info == nullptr) return ErrorResponse(404, "Unknown profile");
    return ServeDeltaScrape(*info);
  }
  // As Go: an empty seconds= is no seconds at all.
  if (const std::string* seconds = req.Param("seconds"); seconds != nullptr && !seconds->empty()) {
    const agent::ProfileInfo* info = agent::FindProfile(name);
    if (info == nullptr) return ErrorResponse(404, "Unknown profile");
    return ServeDeltaProfile(*info, *seconds, req, options);
  }
  int debug = 0;
  if (const std::string* d = req.Param("debug")) {
    const std::optional<int> v = ParseDebugParam(*d);
    if (!v) return ErrorResponse(400, "invalid value for \"debug\" - must be 0, 1 or 2");
    debug = *v;
  }
  std::ostringstream body;
  absl::Status st = WriteProfile(name, debug, body);
  if (absl::IsNotFound(st)) return ErrorResponse(404, "Unknown profile");
  if (!st.ok() || body.str().empty()) return ErrorResponse(500, "failed to collect profile");
  Response r;
  if (debug == 0) {
    r.content_type = "application/octet-stream";
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + name + "\"");
  }
  r.body = body.str();
  return r;
}

// symbol and cmdline answer any method, as Go's (pprof POSTs to symbol).
Response Extra(const std::string& name, const Request& req) {
  return name == "symbol" ? HandleSymbol(req) : HandleCmdline();
}

}  // namespace

Response HandlePprof(const Request& req, const PprofOptions& options) {
  std::string_view path = req.path;
  if (path.substr(0, kPrefix.size()) != kPrefix) return ErrorResponse(404, "Unknown profile");
  std::string name(path.substr(kPrefix.size()));
  Response r;
  if (name == "symbol" || name == "cmdline") {
    r = Extra(name, req);
  } else if (req.method != "GET" && req.method != "HEAD") {
    r = ErrorResponse(405, "Method Not Allowed");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  } else {
    r = name.empty() ? Index() : Profile(name, req, options);
  }
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

}  // namespace lockprof::server
