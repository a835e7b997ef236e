#include "lockprof/agent/pyroscope/ingest_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "lockprof/agent/pyroscope/host_lookup.h"
#include "lockprof/agent/record/own_thread.h"

namespace lockprof::agent {

namespace {

// What the log quotes of an answer's body.
constexpr size_t kMaxBodyKept = 512;
// What is read of an answer's body before the request is given up: Pyroscope
// answers with a line of JSON; a server that sends more (a body that never
// ends, a gzip bomb, which is not inflated) would otherwise cost the
// application that much memory.
constexpr size_t kMaxBodyRead = 64 * 1024;
constexpr char kUserAgent[] = "lockprof-uploader/0.1";
// The longest connect to an address of the server's name when another
// remains to be tried: connects take milliseconds, up to a few hundred
// across regions.
constexpr std::chrono::milliseconds kNextAddressAfter{2000};

// Answers one request on `listener` with 204, then returns. Never blocks for
// long: receives time out, and closing the listener ends accept().
void AnswerOnce(int listener) {
  const int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return;
  const timeval timeout{2, 0};
  setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string request;
  char buf[1024];
  for (ssize_t n;
       request.find("\r\n\r\n") == std::string::npos && (n = recv(c, buf, sizeof buf, 0)) > 0;) {
    request.append(buf, size_t(n));
  }
  static constexpr char kReply[] =
      "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  send(c, kReply, sizeof kReply - 1, MSG_NOSIGNAL);
  close(c);
}

// One exchange with a responder on a loopback port of our own.
void ExchangeOverLoopback() {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(listener);
    return;
  }
  std::thread responder = TryStartOwnThread([listener] { AnswerOnce(listener); });
  if (!responder.joinable()) {  // No thread to spare: the first upload warms up instead.
    close(listener);
    return;
  }
  {
    httplib::Client client("127.0.0.1", ntohs(addr.sin_port));
    client.set_connection_timeout(std::chrono::seconds(2));
    client.set_read_timeout(std::chrono::seconds(2));
    client.set_keep_alive(false);
    client.Post("/", "", "text/plain");
  }
  shutdown(listener, SHUT_RDWR);  // Ends accept() if the client never came.
  responder.join();
  close(listener);
}

}  // namespace

void WarmUpHttpClient() {
  static std::once_flag once;
  std::call_once(once, [] {
    ExchangeOverLoopback();
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    // Its constructor initialises OpenSSL, which registers its own cleanup.
    httplib::SSLClient tls("127.0.0.1", 1);
#endif
  });
}

// Built from the host and port, not from an origin string: cpp-httplib
// parses a bracketed IPv6 address in one only if it has no letters
// ("[fd00::a]" was looked up as a host name, and never connected).
std::unique_ptr<httplib::ClientImpl> MakeClient(const pyroscope::Endpoint& endpoint) {
  if (endpoint.scheme == "https") {
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
    return std::make_unique<httplib::SSLClient>(endpoint.host, endpoint.port);
#else
    return nullptr;  // Every request fails, saying why (Post).
#endif
  }
  return std::make_unique<httplib::ClientImpl>(endpoint.host, endpoint.port);
}

struct IngestClient::Impl {
  std::unique_ptr<httplib::ClientImpl> client;
  httplib::Headers headers;
  // A duplicate of the request's socket, for Abort() to shut it down:
  // cpp-httplib's own abort (stop()) waits for its socket mutex, which it
  // holds while it connects (a server behind a firewall that drops packets:
  // a whole request timeout), whereas shutdown() ends the connect at once.
  // Being a duplicate, it stays this socket until closed here, however
  // cpp-httplib closes its own.
  std::mutex socket_mu;
  int socket = -1;  // Guarded by socket_mu.
  const std::string host;
  std::chrono::milliseconds timeout{0};
  // Bumped by every Abort(): a request that sees it change gives up (its
  // name lookup, and the addresses it has not tried yet).
  std::atomic<uint64_t> aborts{0};

  explicit Impl(const pyroscope::Endpoint& endpoint)
      : client(MakeClient(endpoint)), host(endpoint.host) {}

  void KeepSocket(int fd) {
    std::lock_guard<std::mutex> l(socket_mu);
    if (socket >= 0) close(socket);
    socket = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  }
  void ForgetSocket() {
    std::lock_guard<std::mutex> l(socket_mu);
    if (socket >= 0) close(socket);
    socket = -1;
  }
  void ShutDownSocket() {
    std::lock_guard<std::mutex> l(socket_mu);
    if (socket >= 0) shutdown(socket, SHUT_RDWR);
  }
};

IngestClient::IngestClient(const pyroscope::Endpoint& endpoint,
                           std::vector<std::pair<std::string, std::string>> headers,
                           std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(endpoint)) {
  if (impl_->client == nullptr) return;
  impl_->timeout = timeout;
  impl_->client->set_connection_timeout(timeout);
  impl_->client->set_read_timeout(timeout);
  impl_->client->set_write_timeout(timeout);
  impl_->client->set_follow_location(false);
  impl_->client->set_keep_alive(false);
  // An answer is read as sent: never inflated (a few KB of gzip inflate
  // to gigabytes), and cut short past kMaxBodyRead (Post).
  impl_->client->set_decompress(false);
  // The path and query are sent as given: IngestQuery has encoded them, and
  // cpp-httplib's own encoding on top turned the '+' of a space into %2B
  // (a label "eu west" arrived as "eu+west").
  impl_->client->set_url_encode(false);
  impl_->client->set_socket_options([impl = impl_.get()](int fd) { impl->KeepSocket(fd); });
  impl_->headers.emplace("User-Agent", kUserAgent);
  for (auto& [k, v] : headers) impl_->headers.emplace(std::move(k), std::move(v));
}

PostOutcome IngestClient::Post(const std::string& path_and_query,
                               const pyroscope::MultipartBody& body) {
  PostOutcome out;
  if (impl_->client == nullptr) {
    out.error = "https is not supported: this lockprof was built without OpenSSL";
    return out;
  }
  struct Forget {
    Impl* impl;
    ~Forget() { impl->ForgetSocket(); }
  } forget{impl_.get()};
  // The name is looked up here, with the connect's deadline (host_lookup.h),
  // and cpp-httplib is given one address at a time, which it connects to
  // without a lookup of its own; the next address is tried if that fails,
  // as cpp-httplib's own connect would.
  const uint64_t aborts = impl_->aborts.load();
  auto aborted = [&] { return impl_->aborts.load() != aborts; };
  const HostAddresses found =
      FindHostAddresses(impl_->host, std::chrono::steady_clock::now() + impl_->timeout, aborted);
  if (!found.error.empty()) {
    out.error = found.error;
    return out;
  }
  // The body goes through a receiver that keeps what the log quotes and
  // stops the request past kMaxBodyRead, instead of into a string of any
  // size. (The status line and headers have no such bound in cpp-httplib:
  // only the request's deadline bounds them; RELIABILITY.md.)
  size_t body_read = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = path_and_query;
  req.headers = impl_->headers;
  req.headers.emplace("Content-Type", body.content_type);
  req.body = body.body;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    body_read += n;
    if (out.body.size() < kMaxBodyKept) {
      out.body.append(data, std::min(n, kMaxBodyKept - out.body.size()));
    }
    return body_read <= kMaxBodyRead;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Connection;
  bool answered = false;
  for (size_t i = 0; i < found.numeric.size(); ++i) {
    impl_->client->set_hostname_addr_map({{impl_->host, found.numeric[i]}});
    // An address that never answers (firewalled, a dead replica's) is given
    // up on after kNextAddressAfter when another remains: its connect would
    // otherwise take the whole timeout, and the request's deadline (twice
    // that) or the exit's would end before the next address was tried.
    const bool last = i + 1 == found.numeric.size();
    impl_->client->set_connection_timeout(last ? impl_->timeout
                                               : std::min(impl_->timeout, kNextAddressAfter));
    res = httplib::Response();
    out.body.clear();
    body_read = 0;
    answered = impl_->client->send(req, res, error);
    // Refused, unreachable, or no answer to the connect: the next address.
    // (cpp-httplib reports a connect that timed out apart from one that
    // failed; its own connect tries the next address after either.)
    const bool not_connected =
        error == httplib::Error::Connection || error == httplib::Error::ConnectionTimeout;
    if (answered || !not_connected || aborted()) break;
  }
  if (!answered) {
    out.body.clear();
    if (body_read > kMaxBodyRead) {
      // The server has the request: not retried, as any answer cut short.
      out.error = "HTTP " + std::to_string(res.status) + " with an answer of more than " +
                  std::to_string(kMaxBodyRead) + " bytes: stopped reading it";
      out.maybe_received = true;
      return out;
    }
    out.error = httplib::to_string(error);
    out.maybe_received = error == httplib::Error::Read || error == httplib::Error::Canceled;
    return out;
  }
  out.status = res.status;
  while (!out.body.empty() && (out.body.back() == '\n' || out.body.back() == '\r')) {
    out.body.pop_back();
  }
  out.location = res.get_header_value("Location");
  return out;
}

IngestClient::~IngestClient() { impl_->ForgetSocket(); }

void IngestClient::Abort() {
  if (impl_->client == nullptr) return;
  impl_->aborts.fetch_add(1);
  impl_->ShutDownSocket();
  impl_->client->stop();
}

}  // namespace lockprof::agent
