#include "lockprof/server/handlers/pprof_handlers.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lockprof/agent/base/strings.h"
#include "lockprof/agent/pprof/profile_builder.h"
#include "lockprof/agent/tables/profile_tables.h"
#include "lockprof/server/handlers/delta_handlers.h"
#include "lockprof/server/handlers/html_escape.h"
#include "lockprof/server/handlers/query_params.h"
#include "lockprof/server/handlers/symbol_handlers.h"

namespace lockprof::server {

namespace {

constexpr std::string_view kPrefix = "/debug/pprof/";
// godeltaprof's endpoints: /debug/pprof/delta_<profile>.
constexpr std::string_view kDeltaPrefix = "delta_";

// The endpoints that are not profiles, as Go lists them (count 0).
struct Extra {
  const char* name;
  const char* description;
};
constexpr Extra kExtras[] = {
    {"cmdline", "The command line invocation of the current program"},
    {"symbol", "Maps the program counters listed in the request to function names"},
};

Response Index() {
  // As Go's index: one list of the profiles and the handler-only endpoints
  // (count 0), sorted by name, written once as the table and once as the
  // descriptions.
  struct Entry {
    std::string name, description;
    int64_t count;
  };
  std::vector<Entry> entries;
  for (const agent::ProfileInfo& info : agent::kProfiles) {
    entries.push_back({info.name, info.description, agent::CountSamples(info)});
  }
  for (const Extra& extra : kExtras) entries.push_back({extra.name, extra.description, 0});
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
  std::ostringstream html;
  html << "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n.profile-name{\n"
       << "\tdisplay:inline-block;\n\twidth:6rem;\n}\n</style>\n</head>\n<body>\n"
       << "/debug/pprof/<br>\n<br>\nTypes of profiles available:\n"
       << "<table>\n<thead><td>Count</td><td>Profile</td></thead>\n";
  for (const Entry& e : entries) {
    html << "<tr><td>" << e.count << "</td><td><a href='" << HtmlEscape(e.name) << "?debug=1'>"
         << HtmlEscape(e.name) << "</a></td></tr>\n";
  }
  // Go's page links a goroutine dump here; lockprof has no goroutines.
  html << "</table>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n";
  for (const Entry& e : entries) {
    html << "<li><div class=profile-name>" << HtmlEscape(e.name) << ": </div> "
         << HtmlEscape(e.description) << "</li>\n";
  }
  html << "</ul>\n</p>\n</body>\n</html>";
  Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = html.str();
  return r;
}

Response Profile(const std::string& name, const Request& req, const PprofOptions& options) {
  if (agent::StartsWith(name, kDeltaPrefix)) {
    const agent::ProfileInfo* info = agent::FindProfile(name.substr(kDeltaPrefix.size()));
    if (info == nullptr) return ErrorResponse(404, "Unknown profile");
    return HandleDeltaScrape(*info);
  }
  const agent::ProfileInfo* info = agent::FindProfile(name);
  // As Go: an empty seconds= is no seconds at all.
  if (const std::string* seconds = req.Param("seconds"); seconds != nullptr && !seconds->empty()) {
    if (info == nullptr) return ErrorResponse(404, "Unknown profile");
    return HandleDeltaWindow(*info, *seconds, req, options);
  }
  if (info == nullptr) return ErrorResponse(404, "Unknown profile");
  agent::BuildOptions build;
  // As Go's: strconv.Atoi, its error ignored (not a number is 0), and any
  // positive level is the text form. (Go labels a negative level's answer
  // text/plain, but writes the protobuf form, as here: served as what it is.)
  if (const std::string* d = req.Param("debug"); d != nullptr && AtoiOrZero(*d) > 0) {
    build.debug = 1;
  }
  absl::StatusOr<std::string> body = agent::BuildProfile(*info, build);
  if (!body.ok()) return ErrorResponse(500, "failed to collect profile");
  if (build.debug == 0) return AttachmentResponse(*std::move(body), name);
  Response r;
  r.body = *std::move(body);
  return r;
}

// symbol and cmdline answer any method, as Go's (pprof POSTs to symbol).
Response HandleExtra(const std::string& name, const Request& req) {
  return name == "symbol" ? HandleSymbol(req) : HandleCmdline();
}

}  // namespace

Response HandlePprof(const Request& req, const PprofOptions& options) {
  std::string_view path = req.path;
  if (!agent::StartsWith(path, kPrefix)) return ErrorResponse(404, "Unknown profile");
  std::string name(path.substr(kPrefix.size()));
  Response r;
  if (name == "symbol" || name == "cmdline") {
    r = HandleExtra(name, req);
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
