#include "lockprof/server/admin_handler.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "lockprof/agent/base/env.h"
#include "lockprof/agent/record/own_thread.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/server/handlers/admin_router.h"
#include "lockprof/server/handlers/admin_security.h"
#include "lockprof/server/handlers/query_params.h"

namespace lockprof {

namespace {

constexpr int kMaxAsync = 64;
// Of which ?seconds= windows, which last up to max_profile_seconds: half at
// most, so that the rest answer everything else (a scrape of /metrics above
// all), as the built-in server keeps half its threads from windows.
constexpr int kMaxAsyncWindows = kMaxAsync / 2;

// Asynchronous requests in progress, the windows among them, and whether
// the process is exiting (their windows then end early). A forked child has
// none of the parent's threads: it starts again from zero.
std::atomic<int> g_in_flight{0};
std::atomic<int> g_windows{0};
std::atomic<bool> g_exiting{false};

void EndWindowsAtExit() {
  g_exiting.store(true);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (g_in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void RegisterAtExitOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::atexit(EndWindowsAtExit);
    pthread_atfork(nullptr, nullptr, [] {
      g_in_flight.store(0);
      g_windows.store(0);
    });
  });
}

AdminResponse FromResponse(server::Response in) {
  AdminResponse out;
  out.status = in.status;
  out.headers.reserve(in.headers.size() + 1);
  out.headers.emplace_back("Content-Type", std::move(in.content_type));
  for (auto& h : in.headers) out.headers.push_back(std::move(h));
  out.body = std::move(in.body);
  return out;
}

// LOCKPROF_ADMIN_TOKEN, read once: a getenv() on every request, on the
// host's request threads, could read the environment while another thread's
// setenv() moved it (glibc frees the array getenv walks).
const std::string& EnvToken() {
  static const std::string token = agent::EnvString("LOCKPROF_ADMIN_TOKEN");
  return token;
}

// Whether `request` may be answered: the built-in server's check.
bool Authorised(const AdminRequest& request, const AdminHandlerOptions& options) {
  return server::RequestAuthorised(request.path, request.authorization,
                                   options.token.empty() ? EnvToken() : options.token);
}

AdminResponse Unauthorised() { return FromResponse(server::UnauthorisedResponse()); }

AdminResponse Busy(std::string why) {
  return {
      503, {{"Content-Type", "text/plain; charset=utf-8"}, {"Retry-After", "1"}}, std::move(why)};
}

// Whether `request` asks for a ?seconds= window (on any path: one that has
// none answers at once, whatever it counted as).
bool AsksForAWindow(const AdminRequest& request) {
  for (const auto& [key, value] : server::DecodeQuery(request.query)) {
    if (key == "seconds" && server::ParseSecondsParam(value)) return true;
  }
  return false;
}

// `stopping`: true once the answer is to end early because the process
// exits (unset for a synchronous request, which the exit does not wait for).
AdminResponse Route(const AdminRequest& request, const AdminHandlerOptions& options,
                    std::function<bool()> stopping = nullptr) {
  // On the host's own thread (HandleAdminRequest), the locks lockprof takes
  // from here on (the symbolizer's, the loader's) are its own: never
  // profiled or tracked as the program's, as on lockprof's own threads.
  agent::RecorderScope own;
  server::Request req;
  req.method = request.method;
  req.path = request.path;
  req.query = request.query;
  req.params = server::DecodeQuery(request.query);
  req.body = request.body;
  req.cancelled = request.cancelled;
  req.stopping = std::move(stopping);
  server::PprofOptions pprof;
  pprof.max_profile_seconds = options.max_profile_seconds;
  return FromResponse(server::RouteAdminRequest(req, pprof));
}

}  // namespace

AdminResponse HandleAdminRequest(const AdminRequest& request, const AdminHandlerOptions& options) {
  if (!Authorised(request, options)) return Unauthorised();
  return Route(request, options);
}

void HandleAdminRequestAsync(AdminRequest request, std::function<void(AdminResponse)> done,
                             const AdminHandlerOptions& options) {
  if (!Authorised(request, options)) return done(Unauthorised());
  RegisterAtExitOnce();
  if (g_in_flight.fetch_add(1) >= kMaxAsync || g_exiting.load()) {
    g_in_flight.fetch_sub(1);
    return done(Busy("too many lockprof requests in progress\n"));
  }
  const int window = AsksForAWindow(request) ? 1 : 0;
  if (window != 0 && g_windows.fetch_add(1) >= kMaxAsyncWindows) {
    g_windows.fetch_sub(1);
    g_in_flight.fetch_sub(1);
    return done(Busy("too many profile windows open at once (at most " +
                     std::to_string(kMaxAsyncWindows) + "): try again when one ends\n"));
  }
  // Kept here too: if no thread can be started, the caller is still answered.
  auto job = std::make_shared<std::pair<AdminRequest, std::function<void(AdminResponse)>>>(
      std::move(request), std::move(done));
  std::thread worker = agent::TryStartOwnThread([job, options, window] {
    job->second(
        Route(job->first, options, [] { return g_exiting.load(std::memory_order_relaxed); }));
    g_windows.fetch_sub(window);
    g_in_flight.fetch_sub(1);
  });
  if (worker.joinable()) return worker.detach();
  g_windows.fetch_sub(window);
  g_in_flight.fetch_sub(1);
  job->second(Busy(
      "lockprof: cannot start a thread for this request (the process is at its thread limit)\n"));
}

}  // namespace lockprof
