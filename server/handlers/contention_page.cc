#include "lockprof/server/handlers/contention_page.h"

#include <cinttypes>
#include <cstdio>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lockprof/agent/base/strings.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/tables/delta.h"
#include "lockprof/agent/tables/profile_tables.h"
#include "lockprof/server/handlers/delta_handlers.h"
#include "lockprof/server/handlers/query_params.h"

namespace lockprof::server {

namespace {

constexpr std::string_view kProfileJsonPath = "/debug/lockprof/profile.json";

using agent::AppendJsonString;

// Interns function names, so that a name shared by many stacks is sent once.
class FuncTable {
 public:
  int Index(const std::string& name) {
    auto [it, inserted] = index_.emplace(name, int(names_.size()));
    if (inserted) names_.push_back(&it->first);
    return it->second;
  }
  void AppendJson(std::string* out) const {
    out->push_back('[');
    for (size_t i = 0; i < names_.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendJsonString(*names_[i], out);
    }
    out->push_back(']');
  }

 private:
  std::unordered_map<std::string, int> index_;
  std::vector<const std::string*> names_;  // Keys of index_, which never move.
};

Response JsonResponse(std::string body) {
  Response r;
  r.content_type = "application/json";
  // Profiles change by the second: a cached copy would mislead.
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = std::move(body);
  return r;
}

Response ServeProfileJson(const Request& req, const PprofOptions& options) {
  const std::string* name = req.Param("name");
  const agent::ProfileInfo* info = name == nullptr ? nullptr : agent::FindProfile(*name);
  if (info == nullptr) return ErrorResponse(404, "Unknown profile");
  std::vector<agent::SlotValues> slots;
  int64_t duration_nanos = 0;
  if (const std::string* seconds = req.Param("seconds"); seconds != nullptr && !seconds->empty()) {
    // The same checks and window as /debug/pprof/<profile>?seconds=N.
    const std::optional<int64_t> sec = ParseSecondsParam(*seconds);
    if (!sec) {
      return ErrorResponse(400, "invalid value for \"seconds\" - must be a positive integer");
    }
    if (options.max_profile_seconds > 0 && *sec > options.max_profile_seconds) {
      return ErrorResponse(400, "profile duration exceeds server's WriteTimeout");
    }
    std::vector<agent::SlotValues> start;
    int64_t start_mono = 0;
    if (std::optional<Response> r = WaitOutWindow(*sec, req, options.max_open_windows, [&] {
          agent::ProfileTable(info->id).Snapshot(&start);
          start_mono = agent::MonotonicNanos();
        })) {
      return *r;
    }
    agent::ProfileTable(info->id).Snapshot(&slots);
    slots = agent::Subtract(slots, start);
    duration_nanos = agent::MonotonicNanos() - start_mono;
  } else {
    agent::ProfileTable(info->id).Snapshot(&slots);
  }
  return JsonResponse(
      ProfileJson(agent::Resolve(*info, slots, agent::WallNanos(), duration_nanos)));
}

Response ServePage() {
  Response r;
  r.content_type = "text/html; charset=utf-8";
  // The browser enforces what the page promises: nothing loaded from
  // elsewhere, fetches to this endpoint only, no framing by other sites.
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src "
                         "'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  // For HEAD too: the server sends the length of this body and leaves the
  // body out, and a HEAD's Content-Length must be its GET's (RFC 9110).
  r.body = std::string(ContentionPageHtml());
  return r;
}

}  // namespace

std::string ProfileJson(const agent::ResolvedProfile& rp) {
  std::string out = "{\"profile\":";
  AppendJsonString(rp.info->name, &out);
  out += ",\"types\":[";
  for (int i = 0; i < 2; ++i) {
    out += i ? ",[" : "[";
    AppendJsonString(rp.info->value_types[i][0], &out);
    out.push_back(',');
    AppendJsonString(rp.info->value_types[i][1], &out);
    out.push_back(']');
  }
  out += "],\"duration_nanos\":" + std::to_string(rp.duration_nanos) + ",\"samples\":[";
  FuncTable funcs;
  char buf[32];
  for (size_t i = 0; i < rp.samples.size(); ++i) {
    const agent::ResolvedSample& s = rp.samples[i];
    out += i ? ",{\"v\":[" : "{\"v\":[";
    out += std::to_string(s.values[0]) + "," + std::to_string(s.values[1]) + "],\"s\":[";
    bool first = true;
    for (int li : s.locations) {
      const agent::ResolvedLocation& loc = rp.locations[size_t(li)];
      auto append = [&](const std::string& function) {
        if (!first) out.push_back(',');
        first = false;
        out += std::to_string(funcs.Index(function));
      };
      if (loc.frames.empty()) {
        std::snprintf(buf, sizeof buf, "%#" PRIxPTR, loc.address);
        append(buf);
      }
      for (const agent::SourceFrame& f : loc.frames) append(f.function);
    }
    out += "],\"l\":{";
    first = true;
    for (const auto& [key, value] : s.str_labels) {
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(key, &out);
      out.push_back(':');
      AppendJsonString(value, &out);
    }
    for (const agent::NumLabel& n : s.num_labels) {
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(n.key, &out);
      out.push_back(':');
      out += std::to_string(n.num);
    }
    out += "}}";
  }
  out += "],\"funcs\":";
  funcs.AppendJson(&out);
  out += "}\n";
  return out;
}

Response HandleContentionPage(const Request& req, const PprofOptions& options) {
  if (req.method != "GET" && req.method != "HEAD") {
    Response r = ErrorResponse(405, "Method Not Allowed");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (req.path == kContentionPagePath) return ServePage();
  if (req.path == kProfileJsonPath) return ServeProfileJson(req, options);
  return ErrorResponse(404, "Not found");
}

}  // namespace lockprof::server
