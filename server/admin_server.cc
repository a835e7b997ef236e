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
#include "lockprof/agent/record/own_thread.h"
#include "lockprof/server/handlers/admin_router.h"
#include "lockprof/server/handlers/admin_security.h"
#include "lockprof/server/handlers/query_params.h"
#include "lockprof/server/httplib/bounded_server.h"
#include "lockprof/server/httplib/connection_deadlines.h"
#include "lockprof/server/httplib/connection_guard.h"
#include "lockprof/server/httplib/peer_watch.h"
#include "lockprof/server/httplib/process_sockets.h"
#include "lockprof/server/httplib/replies.h"
#include "lockprof/server/httplib/tls_context.h"

namespace lockprof {

namespace {

struct Running {
  std::unique_ptr<httplib::Server> http;  // An httplib::SSLServer with TLS.
  std::string token;                      // Empty: none required.
  size_t max_body = 0;                    // Options::max_request_bytes.
  std::thread thread;
  std::string address;
  int port = 0;
  sockaddr_storage listener{};  // The bound address: the fork handler's key.
  server::PprofOptions pprof;
  // Set when stopping: waiting requests give up instead of delaying stop.
  std::atomic<bool> stopping{false};
};

// In a forked child: closes the child's descriptors of the parent's
// server's sockets (close, not shutdown: the parent's stay). httplib's
// stop() is not called: it would shut down the listening socket, which the
// parent still listens on.
void CloseServerSocketsInChild(Running* forgotten) {
  if (forgotten != nullptr) server::CloseSocketsOfListener(forgotten->listener);
}

agent::ServiceSlot<Running> g_slot(agent::ForkRank::kAdminServer, &CloseServerSocketsInChild);

server::Request ToRequest(const httplib::Request& in, const Running* s) {
  server::Request out;
  out.method = in.method;
  out.path = in.path;
  if (size_t q = in.target.find('?'); q != std::string::npos) out.query = in.target.substr(q + 1);
  // Decoded as HandleAdminRequest decodes it (httplib keeps only what follows
  // the last '=' of "seconds=3;x=1": a window of 1 s, not an error).
  out.params = server::DecodeQuery(out.query);
  out.body = in.body;
  out.cancelled = server::PeerGoneCheck(server::CurrentRequestSocket());
  out.stopping = [s] { return s->stopping.load(std::memory_order_relaxed); };
  return out;
}

// Whether a body follows the head: a Transfer-Encoding, or a Content-Length
// other than 0.
bool BodyFollows(const httplib::Request& req) {
  return req.has_header("Transfer-Encoding") ||
         (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
}

// Runs before routing, for every request whose head was read completely,
// and before httplib reads its body.
httplib::Server::HandlerResponse PreRoute(const Running* s, const httplib::Request& req,
                                          httplib::Response& res) {
  server::MarkCurrentRequestParsed();
  // A body still to come is read under the request's deadline: the handler
  // says it was received (a body trickled a byte at a time held a thread
  // for as long as each byte came within the read timeout).
  if (!server::HasBody(req)) server::RequestReceived();
  if (server::AmbiguousLength(req)) {
    server::RefuseWith(400,
                       "Bad Request: ambiguous length (Transfer-Encoding with Content-Length, "
                       "or Content-Lengths that differ)\n",
                       res);
    return httplib::Server::HandlerResponse::Handled;
  }
  if (server::RefusedForItsLength(req, s->max_body, res)) {
    return httplib::Server::HandlerResponse::Handled;
  }
  if (!server::RequestAuthorised(req.path, req.get_header_value("Authorization"), s->token)) {
    server::AnswerBeforeBody(req, server::UnauthorisedResponse(), res);
    return httplib::Server::HandlerResponse::Handled;
  }
  if (req.method == "POST" && !server::HasBody(req)) {
    // httplib would read the body until the connection closed (the read
    // deadline, then an empty 400); HTTP says it has none.
    server::Reply(server::PlainResponse(411, "Length Required: a POST needs Content-Length\n"),
                  res);
    return httplib::Server::HandlerResponse::Handled;
  }
  if ((req.method == "GET" || req.method == "HEAD") && BodyFollows(req)) {
    // httplib reads no body for these: it would be parsed as the next
    // request (one request, two answers). Answered, and the connection
    // closed, before it is read.
    server::RequestReceived();
    server::AnswerBeforeBody(req, server::RouteAdminRequest(ToRequest(req, s), s->pprof), res);
    return httplib::Server::HandlerResponse::Handled;
  }
  if (req.method != "GET" && req.method != "HEAD" && req.method != "POST") {
    // PUT, DELETE, OPTIONS...: the router's handlers answer 405 with Allow;
    // routed here, before httplib reads a body none of them takes.
    server::AnswerBeforeBody(req, server::RouteAdminRequest(ToRequest(req, s), s->pprof), res);
    return httplib::Server::HandlerResponse::Handled;
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

void Route(Running* s) {
  // Every path goes to the one router that HandleAdminRequest uses too.
  auto route = [s](const httplib::Request& req, httplib::Response& res) {
    server::RequestReceived();  // Its body too, if any.
    server::Reply(server::RouteAdminRequest(ToRequest(req, s), s->pprof), res);
  };
  httplib::Server& http = *s->http;
  http.set_pre_routing_handler(
      [s](const httplib::Request& req, httplib::Response& res) { return PreRoute(s, req, res); });
  http.Get(".*", route);
  http.Post(".*", route);
  http.set_error_handler(httplib::Server::HandlerWithResponse(server::ExplainRefusedRequest));
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
    std::string error = "cannot create a TLS context";
    s->http = std::make_unique<server::BoundedSslServer>(
        [&](SSL_CTX& ctx) { return server::SetUpTlsContext(ctx, cert, key, &error); }, head_limit);
    if (!s->http->is_valid()) return absl::InvalidArgumentError("admin server TLS: " + error);
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
  // SO_REUSEADDR only: a restarted server binds again past connections in
  // TIME_WAIT. httplib's default adds SO_REUSEPORT, with which a second
  // process (a child that inherited LOCKPROF_ADMIN_ADDR) would silently
  // share the port and answer half the requests instead of failing to bind.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Called by listen_after_bind().
  http.new_task_queue = [limits] { return server::NewGuardedTaskQueue(limits); };
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
  // A Range header and a multipart body too: httplib parses them with
  // regexes that are function-local statics of their own, built at first use.
  auto warm_up = [](httplib::ClientImpl& client) {
    client.Get("/debug/pprof/cmdline", httplib::Headers{{"Range", "bytes=0-0"}});
    client.Post("/debug/pprof/symbol", httplib::MultipartFormDataItems{{"x", "0x1", "", ""}});
  };
  if (dynamic_cast<httplib::SSLServer*>(s.http.get()) == nullptr) {
    httplib::ClientImpl client(host, s.port);
    warm_up(client);
  } else {
    httplib::SSLClient client(host, s.port);
    client.enable_server_certificate_verification(false);
    warm_up(client);
  }
  g_slot.StopAtExit(StopAdminServer);
}

// `address:port` as a client writes it ([v6]:port).
std::string HostPort(const std::string& address, int port) {
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// Stops a server's threads. Neither request handling nor the server's own
// threads take the slot's mutex, so this may run holding it.
void Shutdown(Running* s) {
  s->stopping.store(true, std::memory_order_relaxed);
  s->http->stop();
  if (s->thread.joinable()) s->thread.join();
}

// A server with `opts`, listening and warmed up.
absl::StatusOr<std::unique_ptr<Running>> Listen(const AdminServerOptions& opts) {
  // cpp-httplib would bind port 70000 as 4464 (and say 70000), and "" as
  // every loopback address.
  if (opts.port < 0 || opts.port > 65535) {
    return absl::InvalidArgumentError("admin server port " + std::to_string(opts.port) +
                                      " is not in 0-65535");
  }
  if (opts.address.empty()) {
    return absl::InvalidArgumentError(
        "admin server address is empty: give a host, such as "
        "127.0.0.1");
  }
  auto s = std::make_unique<Running>();
  if (absl::Status st = MakeServer(opts, s.get()); !st.ok()) return st;
  s->pprof.max_profile_seconds = opts.max_profile_seconds;
  s->max_body = opts.max_request_bytes;
  // Half the threads at most wait out windows: the rest answer everything
  // else, a scrape of /metrics above all, however many windows are asked for.
  s->pprof.max_open_windows = std::max(1, opts.max_threads / 2);
  s->address = opts.address;
  Route(s.get());
  if (opts.port == 0) {
    s->port = s->http->bind_to_any_port(opts.address.c_str());
  } else {
    s->port = s->http->bind_to_port(opts.address.c_str(), opts.port) ? opts.port : -1;
  }
  if (s->port <= 0 || !server::LocalAddress(server::ListeningSocket(*s->http), &s->listener)) {
    return absl::UnavailableError("cannot listen on " + HostPort(opts.address, opts.port));
  }
  Running* raw = s.get();
  s->thread = agent::TryStartOwnThread([raw] { raw->http->listen_after_bind(); });
  if (!s->thread.joinable()) {
    return absl::UnavailableError("cannot start the admin server's thread on " +
                                  HostPort(opts.address, s->port) +
                                  " (the process is at its thread limit)");
  }
  WarmUpAndStopAtExit(*s);
  return s;
}

// A start from code under the precedence rule (service.h): the
// environment's address if it names one that can be listened on, else the
// code's own, saying once why. `chosen`: the port the environment's server,
// taken over, had been given for its port 0 (0 if none), which stays the
// one served: it is the one lockprof announced.
absl::StatusOr<std::unique_ptr<Running>> ListenFromCode(const AdminServerOptions& options,
                                                        const std::optional<std::string>& env,
                                                        int chosen) {
  const std::string coded = HostPort(options.address, options.port);
  if (!env) return Listen(options);
  AdminServerOptions opts = options;
  std::string error;
  if (agent::ParseHostPort(*env, &opts.address, &opts.port, &error)) {
    if (opts.port == 0) opts.port = chosen;
    absl::StatusOr<std::unique_ptr<Running>> s = Listen(opts);
    if (s.ok()) {
      const std::string served = HostPort(opts.address, (*s)->port);
      if (HostPort(opts.address, opts.port) != coded) {
        agent::ReportPrecedence("admin server",
                                "serving " + served + " from LOCKPROF_ADMIN_ADDR, not " + coded +
                                    " given in code: the environment wins the address");
      }
      return s;
    }
    error = std::string(s.status().message());
  }
  agent::ReportPrecedence("admin server", "LOCKPROF_ADMIN_ADDR=\"" + *env + "\": " + error +
                                              "; serving " + coded + " given in code instead");
  return Listen(options);
}

}  // namespace

absl::Status StartAdminServer(const AdminServerOptions& options) {
  // Its locks (OpenSSL's, httplib's, its own) are lockprof's, not the program's.
  agent::RecorderScope own;
  const std::optional<std::string> env = agent::EnvValue("LOCKPROF_ADMIN_ADDR");
  std::lock_guard<std::mutex> lock(g_slot.mutex());
  absl::StatusOr<Running*> taken = g_slot.Claim("admin server already running");
  if (!taken.ok()) return taken.status();
  // The environment's server, taken over: its port is served again below.
  int chosen = 0;
  if (std::unique_ptr<Running> old(*taken); old) {
    chosen = old->port;
    Shutdown(old.get());
  }
  absl::StatusOr<std::unique_ptr<Running>> s;
  if (agent::StartingFromEnvironment()) {
    AdminServerOptions opts = options;
    std::string error;
    if (!env || !agent::ParseHostPort(*env, &opts.address, &opts.port, &error)) {
      return absl::InvalidArgumentError("LOCKPROF_ADMIN_ADDR=\"" + env.value_or("") +
                                        "\": " + error);
    }
    s = Listen(opts);
    // Port 0 from the environment: a program that knows nothing of lockprof
    // cannot ask AdminServerAddress() where it is.
    if (s.ok() && opts.port == 0) {
      std::fprintf(stderr, "lockprof: admin server: serving %s (port 0 in LOCKPROF_ADMIN_ADDR)\n",
                   HostPort(opts.address, (*s)->port).c_str());
    }
  } else {
    s = ListenFromCode(options, env, chosen);
  }
  if (!s.ok()) return s.status();
  g_slot.Install(s->release());
  return absl::OkStatus();
}

void StopAdminServer() {
  // Its locks (OpenSSL's, httplib's, its own) are lockprof's, not the program's.
  agent::RecorderScope own;
  std::unique_ptr<Running> s;
  {
    std::lock_guard<std::mutex> lock(g_slot.mutex());
    s.reset(g_slot.instance);
    g_slot.instance = nullptr;
  }
  if (s) Shutdown(s.get());
}

int AdminServerPort() {
  std::lock_guard<std::mutex> lock(g_slot.mutex());
  return g_slot.instance ? g_slot.instance->port : 0;
}

std::string AdminServerAddress() {
  std::lock_guard<std::mutex> lock(g_slot.mutex());
  return g_slot.instance ? HostPort(g_slot.instance->address, g_slot.instance->port) : "";
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
