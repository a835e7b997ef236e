#include "lockprof/server/admin_server.h"

#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include "lockprof/agent/env.h"
#include "lockprof/server/peer_watch.h"
#include "lockprof/agent/health.h"
#include "lockprof/server/metrics_handler.h"
#include "lockprof/server/pprof_handlers.h"
#include "lockprof/server/task_pool.h"

namespace lockprof {

namespace {

struct Running {
  httplib::Server http;
  std::thread thread;
  int port = 0;
  server::PprofOptions pprof;
  // Set when stopping: waiting requests give up instead of delaying stop.
  std::atomic<bool> stopping{false};
};

// Guards start and stop only; request handling never takes it.
std::mutex g_mu;
Running* g_server = nullptr;

server::Request ToRequest(const httplib::Request& in, const Running* s) {
  server::Request out;
  out.method = in.method;
  out.path = in.path;
  for (const auto& [k, v] : in.params) out.params.emplace(k, v);
  if (size_t q = in.target.find('?'); q != std::string::npos) out.query = in.target.substr(q + 1);
  out.body = in.body;
  out.cancelled = [s, peer_gone = server::PeerGoneCheck(in.local_addr, in.local_port,
                                                        in.remote_addr, in.remote_port)] {
    return s->stopping.load(std::memory_order_relaxed) || peer_gone();
  };
  return out;
}

void Reply(const server::Response& in, httplib::Response& out) {
  out.status = in.status;
  for (const auto& [k, v] : in.headers) out.set_header(k, v);
  out.set_content(in.body, in.content_type.c_str());
}

void Route(Running* s) {
  auto pprof = [s](const httplib::Request& req, httplib::Response& res) {
    Reply(server::HandlePprof(ToRequest(req, s), s->pprof), res);
  };
  s->http.Get(R"(/debug/pprof/.*)", pprof);
  s->http.Post(R"(/debug/pprof/.*)", pprof);
  s->http.Get("/debug/pprof", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/debug/pprof/", 301);
  });
  s->http.Get("/metrics", [s](const httplib::Request& req, httplib::Response& res) {
    Reply(server::HandleMetrics(ToRequest(req, s)), res);
  });
  // Called once per answered request, whatever its path or status.
  s->http.set_logger(
      [](const httplib::Request&, const httplib::Response&) { agent::CountAdminRequest(); });
}

}  // namespace

absl::Status StartAdminServer(const AdminServerOptions& options) {
  AdminServerOptions opts = options;
  const char* env = std::getenv("LOCKPROF_ADMIN_ADDR");
  if (env != nullptr && options.address == AdminServerOptions().address &&
      options.port == AdminServerOptions().port) {
    std::string error;
    if (!agent::ParseHostPort(env, &opts.address, &opts.port, &error)) {
      return absl::InvalidArgumentError("LOCKPROF_ADMIN_ADDR=\"" + std::string(env) +
                                        "\": " + error);
    }
  }
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_server != nullptr) return absl::AlreadyExistsError("admin server already running");
  auto s = std::make_unique<Running>();
  s->pprof.max_profile_seconds = opts.max_profile_seconds;
  const size_t max_threads = size_t(opts.max_threads < 1 ? 1 : opts.max_threads);
  s->http.new_task_queue = [max_threads] { return server::NewElasticTaskQueue(max_threads); };
  Route(s.get());
  if (opts.port == 0) {
    s->port = s->http.bind_to_any_port(opts.address.c_str());
  } else {
    s->port = s->http.bind_to_port(opts.address.c_str(), opts.port) ? opts.port : -1;
  }
  if (s->port <= 0) {
    return absl::UnavailableError("cannot listen on " + opts.address + ":" +
                                  std::to_string(opts.port));
  }
  Running* raw = s.get();
  s->thread = std::thread([raw] { raw->http.listen_after_bind(); });
  g_server = s.release();
  return absl::OkStatus();
}

void StopAdminServer() {
  std::unique_ptr<Running> s;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    s.reset(g_server);
    g_server = nullptr;
  }
  if (!s) return;
  s->stopping.store(true, std::memory_order_relaxed);
  s->http.stop();
  if (s->thread.joinable()) s->thread.join();
}

int AdminServerPort() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_server ? g_server->port : 0;
}

// LOCKPROF_ADMIN_ADDR starts the server with the program. The lockprof
// CMake target forces this object into every link (-u lockprof_autostart).
static int AutoStart() {
  if (std::getenv("LOCKPROF_ADMIN_ADDR") == nullptr) return 0;
  absl::Status st = StartAdminServer();
  if (!st.ok()) std::fprintf(stderr, "lockprof: admin server: %s\n", st.ToString().c_str());
  return 1;
}
extern "C" {
int lockprof_autostart = AutoStart();
}

}  // namespace lockprof
