#include "lockprof/server/handlers/delta_handlers.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <thread>

#include "lockprof/agent/pprof/deltas.h"
#include "lockprof/server/handlers/in_flight.h"
#include "lockprof/server/handlers/query_params.h"

namespace lockprof::server {

namespace {

// How often a waiting request asks whether its client is still there: the
// longest a disconnected client keeps its handler thread.
constexpr auto kCancelPoll = std::chrono::milliseconds(100);

// Windows open now, and those of them served with a limit (the built-in
// server's).
std::atomic<int> g_active_waits{0};
std::atomic<int> g_limited_waits{0};

}  // namespace

std::optional<Response> WaitOutWindow(int64_t seconds, const Request& req, int max_open,
                                      const std::function<void()>& start) {
  const InFlight window(g_limited_waits, max_open);
  const InFlight counted(g_active_waits, std::numeric_limits<int>::max());
  if (!window.admitted()) {
    Response r = ErrorResponse(503, "too many profile windows open at once (at most " +
                                        std::to_string(max_open) + "): try again when one ends");
    r.headers.emplace_back("Retry-After", "10");
    return r;
  }
  start();
  using Clock = std::chrono::steady_clock;
  // Saturate: a window of 2^62 s is "forever", not an overflow.
  const int64_t capped = std::min<int64_t>(seconds, int64_t{1} << 32);
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(capped);
  for (;;) {
    if (req.stopping && req.stopping()) {
      return ErrorResponse(503, "the server is stopping: the window ended early, no profile");
    }
    if (req.cancelled && req.cancelled()) return ErrorResponse(500, "context canceled");
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::min<Clock::duration>(deadline - now, kCancelPoll));
  }
}

namespace {

// One godeltaprof tracker per profile, created on first use and never
// destroyed (a request may still be running while statics are torn down).
agent::ProfileIncrements& Increments(const agent::ProfileInfo& profile) {
  static const std::array<agent::ProfileIncrements*, agent::kProfileCount> all = [] {
    std::array<agent::ProfileIncrements*, agent::kProfileCount> increments{};
    for (const agent::ProfileInfo& info : agent::kProfiles) {
      increments[size_t(info.id)] = new agent::ProfileIncrements(info);
    }
    return increments;
  }();
  return *all[size_t(profile.id)];
}

}  // namespace

Response HandleDeltaWindow(const agent::ProfileInfo& profile, const std::string& seconds,
                           const Request& req, const PprofOptions& options) {
  // Go's checks, in Go's order. Every lockprof profile supports deltas, so
  // Go's "not supported for this profile type" cannot arise.
  const std::optional<int64_t> sec = ParseSecondsParam(seconds);
  if (!sec) {
    return ErrorResponse(400, "invalid value for \"seconds\" - must be a positive integer");
  }
  if (options.max_profile_seconds > 0 && *sec > options.max_profile_seconds) {
    return ErrorResponse(400, "profile duration exceeds server's WriteTimeout");
  }
  // Go reads debug with Atoi and ignores errors: only a non-zero number
  // conflicts.
  if (const std::string* debug = req.Param("debug"); debug != nullptr && AtoiOrZero(*debug) != 0) {
    return ErrorResponse(400, "seconds and debug params are incompatible");
  }
  std::optional<agent::ProfileWindow> window;
  if (std::optional<Response> r =
          WaitOutWindow(*sec, req, options.max_open_windows, [&] { window.emplace(profile); })) {
    return *r;
  }
  absl::StatusOr<std::string> body = window->Build();
  if (!body.ok()) return ErrorResponse(500, "failed to compute delta");
  return AttachmentResponse(*std::move(body), std::string(profile.name) + "-delta");
}

Response HandleDeltaScrape(const agent::ProfileInfo& profile) {
  absl::StatusOr<std::string> body = Increments(profile).Next();
  if (!body.ok()) return ErrorResponse(500, "failed to collect profile");
  return AttachmentResponse(*std::move(body), std::string(profile.name) + ".pprof.gz");
}

int ActiveDeltaWaits() { return g_active_waits.load(std::memory_order_relaxed); }

}  // namespace lockprof::server
