// cpp-httplib servers (plain and TLS) that serve each connection themselves,
// so that every request is read through a RequestLimitStream: a request's
// head may make httplib read at most `head_limit` bytes, its body at most
// the payload limit (set_payload_max_length) plus `head_limit` for the lines
// that frame a chunked body. See request_limit_stream.h for why.
//
// They override httplib::Server's private virtual process_and_close_socket
// (legal C++: access does not restrict overriding), which httplib calls on
// a task queue thread for each accepted socket, and reimplement what the
// library does there: a keep-alive loop of Server::process_request (the
// protected, exported parser and router) over a stream of their own
// (connection_stream.h, tls_connection.h). The loop matches httplib's: at
// most keep_alive_max_count requests, each awaited up to
// keep_alive_timeout, none once the server is stopping; then the socket is
// shut down and closed. Handlers, pre-routing, error handler and logger
// are httplib's, as is everything else.
//
// A request cut by a limit, or refused (RefuseCurrentRequest()), is
// answered, and then the connection is closed: the client's sending is out
// of step with the requests. So that the answer reaches the client instead of being
// destroyed by a reset (closing a socket with unread input resets it), the
// server first shuts down its sending side and discards what the client
// still sends, for at most kLingerAfterCut.
#ifndef LOCKPROF_SERVER_HTTPLIB_BOUNDED_SERVER_H_
#define LOCKPROF_SERVER_HTTPLIB_BOUNDED_SERVER_H_

#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <cstddef>
#include <functional>

#include "lockprof/server/httplib/request_limit_stream.h"

namespace lockprof::server {

inline constexpr std::chrono::milliseconds kLingerAfterCut{500};

// httplib::Server's constructor sets SIGPIPE to ignored for the whole
// process. The servers below put the program's disposition back once it
// has run (this base is constructed first, and saves it); lockprof's own
// threads block SIGPIPE instead (agent/record/own_thread.h), so that a
// write to a client that is gone fails with EPIPE either way.
class SavedSigpipe {
 protected:
  SavedSigpipe() { sigaction(SIGPIPE, nullptr, &saved_); }
  void RestoreSigpipe() const { sigaction(SIGPIPE, &saved_, nullptr); }

 private:
  struct sigaction saved_ {};
};

class BoundedServer final : private SavedSigpipe, public httplib::Server {
 public:
  explicit BoundedServer(size_t head_limit) : head_limit_(head_limit) { RestoreSigpipe(); }

 private:
  bool process_and_close_socket(socket_t sock) override;
  const size_t head_limit_;
};

class BoundedSslServer final : private SavedSigpipe, public httplib::SSLServer {
 public:
  // `setup` sets up the TLS context (tls_context.h); is_valid() is false if
  // it failed.
  BoundedSslServer(const std::function<bool(SSL_CTX&)>& setup, size_t head_limit)
      : httplib::SSLServer(setup), head_limit_(head_limit) {
    RestoreSigpipe();
  }

 private:
  bool process_and_close_socket(socket_t sock) override;
  const size_t head_limit_;
};

// The socket `server` listens on, once bound (httplib keeps it to itself).
socket_t ListeningSocket(const httplib::Server& server);

// On the thread serving a connection of either server, while it answers a
// request (in httplib's handlers, error handler and logger): which limit cut
// that request. httplib answers a cut request with 400 (or 414 for an
// over-long request line); the error handler may say better: 431 Request
// Header Fields Too Large for the head, 413 Payload Too Large for the body.
// kNone on any other thread.
RequestCut CurrentRequestCut();

// On that thread: the socket of the connection being served (the raw socket
// under TLS), for noticing that its client has gone (peer_watch.h);
// INVALID_SOCKET on any other thread.
socket_t CurrentRequestSocket();

// On that thread, from the pre-routing handler: the request was parsed.
// Whether it was: false in the error handler for a request that httplib
// refused itself (a malformed request line or header, a line over its
// 8 KiB limit, an unknown method), which it answers with 400 or 414.
void MarkCurrentRequestParsed();
bool CurrentRequestParsed();

// On that thread: close the connection once this request is answered
// (RequestCut::kRefused). For a request whose end cannot be trusted: what
// the client sent after it must not be served as another request.
void RefuseCurrentRequest();

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_BOUNDED_SERVER_H_
