#include "lockprof/server/admin_server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "lockprof/agent/base/env.h"
#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/base/parse.h"
#include "lockprof/agent/base/service.h"
#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/server/handlers/admin_security.h"
#include "lockprof/server/handlers/contention_page.h"
#include "lockprof/server/handlers/metrics_handlers.h"
#include "lockprof/server/handlers/pprof_handlers.h"
#include "lockprof/server/httplib/bounded_server.h"
#include "lockprof/server/httplib/connection_deadlines.h"
#include "lockprof/server/httplib/connection_guard.h"
#include "lockprof/server/httplib/peer_watch.h"
#include "lockprof/server/httplib/process_sockets.h"

namespace lockprof {

namespace {

struct Running {
  std::unique_ptr<httplib::Server> http;  // An httplib::SSLServer with TLS.
  std::string token;                      // Empty: none required.
  std::thread thread;
  std::string address;
  int port = 0;
  server::PprofOptions pprof;
  // Set when stopping: waiting requests give up instead of delaying stop.
  std::atomic<bool> stopping{false};
};

// In a forked child: closes the child's descriptors of the parent's
// server's sockets (close, not shutdown: the parent's stay). httplib's
// stop() is not called: it would shut down the listening socket, which the
// parent still listens on.
void CloseServerSocketsInChild(Running* forgotten) {
  if (forgotten != nullptr) server::CloseSocketsOnPort(forgotten->port);
}

agent::ServiceSlot<Running> g_slot(agent::ForkRank::kAdminServer, &CloseServerSocketsInChild);

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
  server::ResponseReady();
}

// Runs before routing, for every request that was read completely.
httplib::Server::HandlerResponse PreRoute(const Running* s, const httplib::Request& req,
                                          httplib::Response& res) {
  server::RequestReceived();
  // The contention page's HTML holds no data: a browser loads it without the
  // token, and the page sends the token on its own requests.
  if (s->token.empty() || req.path == server::kContentionPagePath ||
      server::BearerTokenMatches(req.get_header_value("Authorization"), s->token)) {
    return httplib::Server::HandlerResponse::Unhandled;
  }
  res.status = 401;
  res.set_header("WWW-Authenticate", "Bearer");
  res.set_content("Unauthorized\n", "text/plain; charset=utf-8");
  server::ResponseReady();
  return httplib::Server::HandlerResponse::Handled;
}

// Called for every response with a status of 400 or more. httplib answers a
// request cut by a size limit with 400: say which limit it was, as Go's
// server does (431 for the head), and that the connection will be closed.
httplib::Server::HandlerResponse ExplainCutRequest(const httplib::Request&,
                                                   httplib::Response& res) {
  const server::RequestCut cut = server::CurrentRequestCut();
  if (cut == server::RequestCut::kNone || res.status != 400) {
    return httplib::Server::HandlerResponse::Unhandled;
  }
  const bool head = cut == server::RequestCut::kHead;
  res.status = head ? 431 : 413;
  res.set_header("Connection", "close");
  res.set_content(head ? "Request Header Fields Too Large\n" : "Payload Too Large\n",
                  "text/plain; charset=utf-8");
  server::ResponseReady();
  return httplib::Server::HandlerResponse::Handled;
}

void Route(Running* s) {
  auto pprof = [s](const httplib::Request& req, httplib::Response& res) {
    Reply(server::HandlePprof(ToRequest(req, s), s->pprof), res);
  };
  httplib::Server& http = *s->http;
  http.set_pre_routing_handler(
      [s](const httplib::Request& req, httplib::Response& res) { return PreRoute(s, req, res); });
  http.Get(R"(/debug/pprof/.*)", pprof);
  http.Post(R"(/debug/pprof/.*)", pprof);
  http.Get("/debug/pprof", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/debug/pprof/", 301);
    server::ResponseReady();
  });
  http.Get("/metrics", [s](const httplib::Request& req, httplib::Response& res) {
    Reply(server::HandleMetrics(ToRequest(req, s)), res);
  });
  http.Get(R"(/debug/lockprof/.*)", [s](const httplib::Request& req, httplib::Response& res) {
    Reply(server::HandleContentionPage(ToRequest(req, s), s->pprof), res);
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse(ExplainCutRequest));
  // Called once per answered request, whatever its path or status, after
  // the response was written.
  http.set_logger([](const httplib::Request&, const httplib::Response&) {
    agent::CountAdminRequest();
    server::ResponseSent();
  });
}

// The httplib server (TLS or not) with the token and limits of `opts`.
absl::Status MakeServer(const AdminServerOptions& opts, Running* s) {
  s->token = agent::OptionOrEnv(opts.token, "LOCKPROF_ADMIN_TOKEN");
  const std::string cert = agent::OptionOrEnv(opts.tls_cert_file, "LOCKPROF_ADMIN_TLS_CERT");
  const std::string key = agent::OptionOrEnv(opts.tls_key_file, "LOCKPROF_ADMIN_TLS_KEY");
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("admin server TLS needs both a certificate and a key");
  }
  // The bounded servers read every request through a RequestLimitStream.
  const size_t head_limit = std::max<size_t>(opts.max_request_head_bytes, 1);
  if (cert.empty()) {
    s->http = std::make_unique<server::BoundedServer>(head_limit);
  } else {
    s->http = std::make_unique<server::BoundedSslServer>(cert.c_str(), key.c_str(), head_limit);
    if (!s->http->is_valid()) {
      return absl::InvalidArgumentError("admin server TLS: cannot load certificate \"" + cert +
                                        "\" and key \"" + key + "\"");
    }
  }
  server::ConnectionLimits limits;
  limits.max_threads = size_t(opts.max_threads < 1 ? 1 : opts.max_threads);
  limits.max_connections = std::max(limits.max_threads, size_t(std::max(opts.max_connections, 0)));
  limits.request_timeout = std::chrono::milliseconds(std::max(opts.read_timeout_ms, 1));
  limits.response_timeout = std::chrono::milliseconds(std::max(opts.write_timeout_ms, 1));
  httplib::Server& http = *s->http;
  http.set_keep_alive_timeout(limits.keep_alive_timeout.count());
  http.set_read_timeout(limits.request_timeout);
  http.set_write_timeout(limits.response_timeout);
  http.set_payload_max_length(opts.max_request_bytes);
  // Called by listen_after_bind(), once the port is known.
  http.new_task_queue = [s, limits]() mutable {
    limits.port = s->port;
    return server::NewGuardedTaskQueue(limits);
  };
  return absl::OkStatus();
}

// cpp-httplib initialises function-local statics (its set of methods) while
// it parses its first request, and destroys them at exit. So the server
// answers one request of its own before anyone else knows its port, and then
// registers an exit handler that stops it: exit handlers run in reverse
// order of registration, so the server's threads are joined before those
// statics are destroyed (a thread still parsing a request at exit would read
// a destroyed object). The first request also keeps TSan, which cannot see
// the guard checks of the uninstrumented library, from reporting two
// concurrent first requests as a race.
void WarmUpAndStopAtExit(const Running& s) {
  for (int i = 0; i < 2000 && !s.http->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const std::string host = s.address == "0.0.0.0" || s.address == "::" ? "127.0.0.1" : s.address;
  if (dynamic_cast<httplib::SSLServer*>(s.http.get()) == nullptr) {
    httplib::Client(host, s.port).Get("/debug/pprof/cmdline");
  } else {
    httplib::SSLClient client(host, s.port);
    client.enable_server_certificate_verification(false);
    client.Get("/debug/pprof/cmdline");
  }
  g_slot.StopAtExit(StopAdminServer);
}

}  // namespace

absl::Status StartAdminServer(const AdminServerOptions& options) {
  AdminServerOptions opts = options;
  const std::optional<std::string> env = agent::EnvValue("LOCKPROF_ADMIN_ADDR");
  if (env && options.address == AdminServerOptions().address &&
      options.port == AdminServerOptions().port) {
    std::string error;
    if (!agent::ParseHostPort(*env, &opts.address, &opts.port, &error)) {
      return absl::InvalidArgumentError("LOCKPROF_ADMIN_ADDR=\"" + *env + "\": " + error);
    }
  }
  std::lock_guard<std::mutex> lock(g_slot.mutex());
  if (g_slot.instance != nullptr) return absl::AlreadyExistsError("admin server already running");
  auto s = std::make_unique<Running>();
  if (absl::Status st = MakeServer(opts, s.get()); !st.ok()) return st;
  s->pprof.max_profile_seconds = opts.max_profile_seconds;
  s->address = opts.address;
  Route(s.get());
  if (opts.port == 0) {
    s->port = s->http->bind_to_any_port(opts.address.c_str());
  } else {
    s->port = s->http->bind_to_port(opts.address.c_str(), opts.port) ? opts.port : -1;
  }
  if (s->port <= 0) {
    return absl::UnavailableError("cannot listen on " + opts.address + ":" +
                                  std::to_string(opts.port));
  }
  Running* raw = s.get();
  s->thread = std::thread([raw] { raw->http->listen_after_bind(); });
  WarmUpAndStopAtExit(*s);
  g_slot.instance = s.release();
  return absl::OkStatus();
}

void StopAdminServer() {
  std::unique_ptr<Running> s;
  {
    std::lock_guard<std::mutex> lock(g_slot.mutex());
    s.reset(g_slot.instance);
    g_slot.instance = nullptr;
  }
  if (!s) return;
  s->stopping.store(true, std::memory_order_relaxed);
  s->http->stop();
  if (s->thread.joinable()) s->thread.join();
}

int AdminServerPort() {
  std::lock_guard<std::mutex> lock(g_slot.mutex());
  return g_slot.instance ? g_slot.instance->port : 0;
}

// LOCKPROF_ADMIN_ADDR starts the server with the program. The lockprof
// CMake target forces this object into every link (-u lockprof_autostart).
extern "C" {
int lockprof_autostart = agent::AutoStartFromEnvironment("admin server", [] {
  if (!agent::EnvValue("LOCKPROF_ADMIN_ADDR")) return absl::NotFoundError("LOCKPROF_ADMIN_ADDR");
  return StartAdminServer();
});
}

}  // namespace lockprof
