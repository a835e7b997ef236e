// The deadlines of one admin-server connection, and the hooks that move
// them along as its requests are served.
//
// Deadlines follow the connection, on the thread that serves it:
//   - from when a thread takes the connection (TLS handshake included) or
//     from when the previous response was sent (plus the keep-alive wait),
//     until the request has been read: request_timeout;
//   - none while the handler runs (a ?seconds=N window waits on purpose);
//   - from when the handler produced its response until it is written:
//     response_timeout.
// The guarded task queue (connection_guard.h) arms the first one and its
// watchdog shuts down every connection past its deadline.
#ifndef LOCKPROF_SERVER_HTTPLIB_CONNECTION_DEADLINES_H_
#define LOCKPROF_SERVER_HTTPLIB_CONNECTION_DEADLINES_H_

#include <atomic>
#include <cstdint>

namespace lockprof::server {

struct ConnectionDeadlines {
  int64_t request_ns = 0, response_ns = 0, idle_ns = 0;
  // MonotonicNanos() after which the watchdog shuts the socket down; 0: none.
  std::atomic<int64_t> deadline{0};
  // True while no request of the connection is being handled or answered:
  // queued, in its TLS handshake, reading a request, or kept alive between
  // requests. Such a connection may be evicted for a new one at the
  // connection cap (connection_guard.h).
  std::atomic<bool> awaiting{true};

  // Sets the deadline `ns` from now.
  void ArmIn(int64_t ns);
};

// For its lifetime, `deadlines` belong to the connection the calling thread
// serves: the hooks below act on them. Not nested.
class ServingConnection {
 public:
  explicit ServingConnection(ConnectionDeadlines* deadlines);
  ~ServingConnection();
  ServingConnection(const ServingConnection&) = delete;
  ServingConnection& operator=(const ServingConnection&) = delete;
};

// Called by the server's handlers on the thread serving a connection (they
// do nothing on any other thread).
// The request has been read: no deadline while it is handled.
void RequestReceived();
// The response is ready to be written: response_timeout starts.
void ResponseReady();
// The response has been written: the connection may wait for another
// request (keep-alive) and then must deliver it in request_timeout.
void ResponseSent();

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_CONNECTION_DEADLINES_H_
