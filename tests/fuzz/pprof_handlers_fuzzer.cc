// Fuzzes the /debug/pprof/ handlers (profiles, ?seconds= windows, delta_*,
// symbol, cmdline), /metrics and the contention page (/debug/lockprof/, its
// profile.json) with whole requests: method, path, query
// string and body, decoded by cpp-httplib's own functions exactly as the
// admin server decodes them. Input:
//   METHOD SP TARGET LF BODY      (TARGET = path ["?" query], URL-encoded)
// The handlers must never crash, hang or leak, and every answer must have
// the shape Go's net/http/pprof gives it.
#include <httplib.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "lockprof/agent/labels.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/sampling.h"
#include "lockprof/server/handlers/contention_page.h"
#include "lockprof/server/handlers/metrics_handlers.h"
#include "lockprof/server/handlers/pprof_handlers.h"

namespace {

// Samples in every profile, so that the handlers encode real data.
void RecordSomething() {
  lockprof::SetMutexProfileFraction(1);
  lockprof::SetHoldProfileRate(1);
  lockprof::SetBlockProfileRate(1);
  lockprof::ScopedLabels labels({{"fuzz", "yes"}});
  const lockprof::agent::EventTags tags{"fuzz.lock"};
  lockprof::agent::StackTrace stack;
  lockprof::agent::CaptureStack(__builtin_frame_address(0), &stack);
  lockprof::agent::RecordContention(1000, tags, __builtin_frame_address(0));
  lockprof::agent::RecordBlock(2000, tags, stack);
  lockprof::agent::RecordHold(3000, 1, tags, __builtin_frame_address(0));
  lockprof::agent::RecordCasRetries(4, 5000, tags, __builtin_frame_address(0));
}

lockprof::server::Request ParseRequest(std::string_view input) {
  lockprof::server::Request req;
  size_t nl = input.find('\n');
  std::string_view line = input.substr(0, nl);
  if (nl != std::string_view::npos) req.body = std::string(input.substr(nl + 1));
  size_t sp = line.find(' ');
  req.method = std::string(line.substr(0, sp));
  std::string_view target = sp == std::string_view::npos ? "" : line.substr(sp + 1);
  size_t q = target.find('?');
  req.path = httplib::detail::decode_url(std::string(target.substr(0, q)), false);
  if (q != std::string_view::npos) {
    req.query = std::string(target.substr(q + 1));
    httplib::Params params;
    httplib::detail::parse_query_text(std::string(target.substr(q + 1)), params);
    for (auto& [k, v] : params) req.params.emplace(k, v);
  }
  return req;
}

void Check(const lockprof::server::Response& r) {
  if (r.status < 200 || r.status > 599) __builtin_trap();
  if (r.status != 200 && (r.body.empty() || r.body.back() != '\n')) __builtin_trap();
  if (r.content_type == "application/octet-stream" &&
      (r.body.size() < 2 || uint8_t(r.body[0]) != 0x1f || uint8_t(r.body[1]) != 0x8b)) {
    __builtin_trap();  // A binary profile is gzipped.
  }
  if (r.content_type == "application/json" &&
      (r.body.size() < 3 || r.body[0] != '{' || r.body.compare(r.body.size() - 2, 2, "}\n") != 0)) {
    __builtin_trap();  // The page's profiles are one JSON object and a newline.
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  RecordSomething();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // Requests are small; big ones only slow the search.
  lockprof::server::Request req =
      ParseRequest(std::string_view(reinterpret_cast<const char*>(data), size));
  // A ?seconds=N window would wait N seconds: the client has always just
  // gone away, so the handler gives up at once (and that path is fuzzed).
  req.cancelled = [] { return true; };
  if (req.path == "/metrics") {
    Check(lockprof::server::HandleMetrics(req));
  } else if (req.path.rfind("/debug/lockprof/", 0) == 0) {
    Check(lockprof::server::HandleContentionPage(req));
  } else {
    Check(lockprof::server::HandlePprof(req));
  }
  return 0;
}
