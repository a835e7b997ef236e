// Limits on the admin server's connections that a hostile or broken client
// cannot get around: how many there are, and how long each may take to send
// its request or to take its response.
//
// httplib 0.11 bounds each read and write of a socket (set_read_timeout),
// not a whole request: a client sending one byte a second keeps a thread
// forever. And it hands every accepted connection to its task queue, which
// neither sees the socket (it is captured in the std::function) nor may
// drop the task (that would leak the socket). So this queue finds the
// socket itself: httplib calls enqueue() on its accept thread right after
// accept(), and the new connection is the one socket of this process
// connected on the server's listening address, that is not already being
// tracked (compared by inode, which stays unique while the socket is open;
// other threads' descriptors are only read through /proc and getsockname).
// The queue keeps a duplicate of that descriptor, so the socket cannot be
// closed and its number reused while the queue may still act on it, and a
// watchdog thread shuts down (shutdown(2), which wakes httplib's poll) every
// connection whose deadline has passed. The price is one scan of
// /proc/self/fd per connection, on the accept thread.
//
// Deadlines follow the connection (see connection_deadlines.h).
// Connections beyond max_connections (queued and served together) are shut
// down at once, on the accept thread, without reading anything.
#ifndef LOCKPROF_SERVER_HTTPLIB_CONNECTION_GUARD_H_
#define LOCKPROF_SERVER_HTTPLIB_CONNECTION_GUARD_H_

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace httplib {
class TaskQueue;
}

namespace lockprof::server {

struct ConnectionLimits {
  // The server's listening address (LocalAddress of its socket): how its
  // connections are recognised, by their local address (process_sockets.h).
  sockaddr_storage listener{};
  // Threads serving connections at once (see task_pool.h); more queue.
  size_t max_threads = 64;
  // Connections queued and served together. A connection over the cap
  // evicts the oldest that awaits a request (see connection_deadlines.h);
  // without one, it is closed at once.
  size_t max_connections = 128;
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds response_timeout{10000};
  // How long httplib waits for a further request on a kept-alive
  // connection (Server::set_keep_alive_timeout), in whole seconds.
  std::chrono::seconds keep_alive_timeout{5};
};

// For httplib::Server::new_task_queue, which takes ownership. shutdown()
// (httplib calls it once the server stopped accepting) ends the
// connections that await a request at once and the others within a second,
// runs what is queued, waits for every thread, then stops the watchdog.
httplib::TaskQueue* NewGuardedTaskQueue(const ConnectionLimits& limits);

// Connections closed for exceeding a deadline, and connections closed for
// exceeding max_connections (refused, or evicted awaiting a request), by
// every guarded queue since the process started.
uint64_t ConnectionsTimedOut();
uint64_t ConnectionsRefused();
// Connections queued or being served now (counted against max_connections),
// by every guarded queue. A connection counts until its task has closed it,
// which may be a moment after the client read its response.
uint64_t ConnectionsOpen();

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_CONNECTION_GUARD_H_
