#include "lockprof/server/pprof_handlers.h"

#include <sstream>
#include <string_view>

#include "lockprof/agent/env.h"
#include "lockprof/agent/profiles.h"

namespace lockprof::server {

namespace {

constexpr std::string_view kPrefix = "/debug/pprof/";

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
  html << "</table>\n<a href=\"goroutine?debug=2\"></a>\n<br>\n<p>\nProfile Descriptions:\n"
       << "<ul>\n"
       << "<li><div class=profile-name>block: </div> Stack traces that led to blocking on "
          "lockprof primitives, charged to the waiter</li>\n"
       << "<li><div class=profile-name>cas: </div> Stack traces of lockprof::Atomic "
          "compare-and-swap loops that retried</li>\n"
       << "<li><div class=profile-name>hold: </div> Stack traces of critical sections, "
          "sampled, with how long the lock was held</li>\n"
       << "<li><div class=profile-name>mutex: </div> Stack traces of holders of contended "
          "mutexes, charged with the time others waited</li>\n"
       << "</ul>\n</p>\n</body>\n</html>\n";
  Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = html.str();
  return r;
}

Response Profile(const std::string& name, const Request& req) {
  int debug = 0;
  if (const std::string* d = req.Param("debug")) {
    std::optional<int64_t> v = agent::ParseInt(*d, 0, 2);
    if (!v) return ErrorResponse(400, "invalid value for \"debug\" - must be 0, 1 or 2");
    debug = int(*v);
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

}  // namespace

Response HandlePprof(const Request& req) {
  std::string_view path = req.path;
  if (path.substr(0, kPrefix.size()) != kPrefix) return ErrorResponse(404, "Unknown profile");
  std::string name(path.substr(kPrefix.size()));
  if (req.method != "GET" && req.method != "HEAD") {
    Response r = ErrorResponse(405, "Method Not Allowed");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  Response r = name.empty() ? Index() : Profile(name, req);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

}  // namespace lockprof::server
