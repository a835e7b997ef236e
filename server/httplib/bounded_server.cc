#include "lockprof/server/httplib/bounded_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>

#include "lockprof/server/httplib/connection_guard.h"
#include "lockprof/server/httplib/connection_stream.h"
#include "lockprof/server/httplib/tls_connection.h"

namespace lockprof::server {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// The request being answered on this thread, for CurrentRequestCut().
thread_local RequestLimitStream* t_request = nullptr;

// What Server::process_request needs, bound to one server.
using ProcessRequest =
    std::function<bool(httplib::Stream& strm, bool close_connection, bool& connection_closed)>;

// The parts of a server's configuration that the keep-alive loop uses.
struct LoopConfig {
  const std::atomic<socket_t>* listening;  // INVALID_SOCKET once stopping.
  size_t max_requests;
  milliseconds keep_alive;
  size_t head_limit, body_limit;
};

StreamTimeouts Timeouts(time_t read_sec, time_t read_usec, time_t write_sec, time_t write_usec) {
  StreamTimeouts t;
  t.read = std::chrono::seconds(read_sec) + std::chrono::microseconds(read_usec);
  t.write = std::chrono::seconds(write_sec) + std::chrono::microseconds(write_usec);
  return t;
}

// The limit on a body's bytes: the payload limit, plus head_limit for the
// lines that frame a chunked body; saturating, as the payload limit is
// SIZE_MAX unless set.
size_t BodyLimit(size_t payload_limit, size_t head_limit) {
  return payload_limit > SIZE_MAX - head_limit ? SIZE_MAX : payload_limit + head_limit;
}

// Waits up to config.keep_alive for the first byte of a request, as
// httplib's keep_alive() does, but in slices, so that a stopping server does
// not wait for its idle connections.
bool AwaitRequest(ConnectionStream& conn, const LoopConfig& config) {
  const auto deadline = Clock::now() + config.keep_alive;
  for (;;) {
    if (config.listening->load() == INVALID_SOCKET) return false;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (conn.WaitForInput(std::clamp(left, milliseconds(0), milliseconds(100)))) return true;
    if (left <= milliseconds(0)) return false;
  }
}

// After a cut request was answered: see the header.
void LingerAndDiscard(int fd) {
  shutdown(fd, SHUT_WR);
  const auto deadline = Clock::now() + kLingerAfterCut;
  char discard[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left <= milliseconds(0) || poll(&p, 1, int(left.count())) <= 0) return;
    const ssize_t n = recv(fd, discard, sizeof discard, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) return;
  }
}

// Shuts the socket down and closes it. `reset`: so that the close resets
// the connection, dropping what is still queued for the client instead of
// trickling it out to one that reads too slowly (see connection_guard.h).
void ShutdownAndClose(socket_t sock, bool reset) {
  if (reset) {
    const linger abort{1, 0};
    setsockopt(sock, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  }
  shutdown(sock, SHUT_RDWR);
  close(sock);
}

// httplib's keep-alive loop, over `conn` through a RequestLimitStream; then
// closes the connection.
bool Serve(ConnectionStream& conn, const LoopConfig& config, const ProcessRequest& process) {
  RequestLimitStream stream(conn, config.head_limit, config.body_limit);
  t_request = &stream;
  bool ok = false;
  for (size_t left = config.max_requests; left > 0 && AwaitRequest(conn, config); --left) {
    stream.StartRequest();
    bool connection_closed = false;
    ok = process(stream, left == 1, connection_closed);
    if (!ok || connection_closed || stream.cut() != RequestCut::kNone) break;
  }
  t_request = nullptr;
  if (ok) conn.Finish();
  if (stream.cut() != RequestCut::kNone) LingerAndDiscard(conn.socket());
  ShutdownAndClose(conn.socket(), conn.write_failed());
  return ok;
}

// httplib accepts connections without SOCK_CLOEXEC: a program that forks
// and execs while one is open would pass it on (the connection guard marks
// it right after accept; this covers a server without it).
void CloseOnExec(socket_t sock) { fcntl(sock, F_SETFD, FD_CLOEXEC); }

// Called by httplib once it has read a request's head, before routing and
// before it reads the body. Undoes what httplib would do on its own and Go's
// net/http/pprof never does, none of it bounded by the server's limits:
//   - inflate a body sent with Content-Encoding (gzip, deflate, br) whole,
//     whatever its inflated size: the body limit counts the bytes sent, and
//     200 KB of gzip took the host 381 MiB. The body is taken as sent.
//   - answer byte ranges (Range): each range was a copy of the answer in
//     memory, and a header line of "0-," repeated made thousands of them.
//   - compress answers (Accept-Encoding): with Brotli at its slowest
//     setting, seconds of CPU for a large profile that no deadline stopped.
// (A Range httplib cannot parse is still answered 416, before this runs.)
void IgnoreWhatGoIgnores(httplib::Request& req) {
  req.headers.erase("Content-Encoding");
  req.headers.erase("Accept-Encoding");
  req.ranges.clear();
}

}  // namespace

bool BoundedServer::process_and_close_socket(socket_t sock) {
  if (AnswerSocketPeek(sock)) return true;
  CloseOnExec(sock);
  SocketConnection conn(sock, Timeouts(read_timeout_sec_, read_timeout_usec_, write_timeout_sec_,
                                       write_timeout_usec_));
  const LoopConfig config{&svr_sock_, keep_alive_max_count_,
                          std::chrono::seconds(keep_alive_timeout_sec_), head_limit_,
                          BodyLimit(payload_max_length_, head_limit_)};
  return Serve(conn, config, [this](httplib::Stream& strm, bool close, bool& closed) {
    return process_request(strm, close, closed, IgnoreWhatGoIgnores);
  });
}

bool BoundedSslServer::process_and_close_socket(socket_t sock) {
  if (AnswerSocketPeek(sock)) return true;
  CloseOnExec(sock);
  const StreamTimeouts timeouts =
      Timeouts(read_timeout_sec_, read_timeout_usec_, write_timeout_sec_, write_timeout_usec_);
  std::unique_ptr<TlsConnection> conn = TlsConnection::Accept(sock, ssl_context(), timeouts);
  if (conn == nullptr) {
    ShutdownAndClose(sock, false);
    return false;
  }
  const LoopConfig config{&svr_sock_, keep_alive_max_count_,
                          std::chrono::seconds(keep_alive_timeout_sec_), head_limit_,
                          BodyLimit(payload_max_length_, head_limit_)};
  SSL* ssl = conn->ssl();
  return Serve(*conn, config, [this, ssl](httplib::Stream& strm, bool close, bool& closed) {
    return process_request(strm, close, closed, [ssl](httplib::Request& req) {
      req.ssl = ssl;
      IgnoreWhatGoIgnores(req);
    });
  });
}

namespace {
// httplib::Server's protected listening socket, reached through a member
// pointer named in a derived class.
struct ListeningSocketOf : httplib::Server {
  static socket_t Of(const httplib::Server& server) {
    return (server.*(&ListeningSocketOf::svr_sock_)).load();
  }
};
}  // namespace

socket_t ListeningSocket(const httplib::Server& server) { return ListeningSocketOf::Of(server); }

RequestCut CurrentRequestCut() {
  return t_request != nullptr ? t_request->cut() : RequestCut::kNone;
}

socket_t CurrentRequestSocket() {
  return t_request != nullptr ? t_request->socket() : INVALID_SOCKET;
}

void MarkCurrentRequestParsed() {
  if (t_request != nullptr) t_request->MarkParsed();
}

bool CurrentRequestParsed() { return t_request != nullptr && t_request->parsed(); }

void RefuseCurrentRequest() {
  if (t_request != nullptr) t_request->Refuse();
}

}  // namespace lockprof::server
