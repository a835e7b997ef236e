// Limits on the admin server's connections that a hostile or broken client
// cannot get around: how many there are, and how long each may take to send
// its request or to take its response.
//
// httplib 0.11 bounds each read and write of a socket (set_read_timeout),
// not a whole request: a client sending one byte a second keeps a thread
// forever. And it hands every accepted connection to its task queue as a
// closure, which neither shows the socket nor may be dropped (that would
// leak the socket). The closure is httplib's `[=] {
// process_and_close_socket(sock); }`, nothing else (listen_internal in
// 0.11.4), and the servers of bounded_server.h override that virtual. So
// this queue asks the closure itself: on the accept thread, right after
// accept(), it calls it once with a peek armed (ArmSocketPeek), and the
// servers' process_and_close_socket, seeing the peek, only names its socket
// (AnswerSocketPeek) and returns; the queue runs the closure for real on a
// worker thread. Finding the socket costs nothing however many descriptors
// the process has open. The queue keeps a duplicate of that descriptor, so
// the socket cannot be closed and its number reused while the queue may
// still act on it, and a watchdog thread shuts down (shutdown(2), which
// wakes httplib's poll) every connection whose deadline has passed.
//
// Deadlines follow the connection (see connection_deadlines.h).
// Connections beyond max_connections (queued and served together) are shut
// down at once, on the accept thread, without reading anything.
#ifndef LOCKPROF_SERVER_HTTPLIB_CONNECTION_GUARD_H_
#define LOCKPROF_SERVER_HTTPLIB_CONNECTION_GUARD_H_

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace httplib {
class TaskQueue;
}

namespace lockprof::server {

struct ConnectionLimits {
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

// For the new_task_queue of a server of bounded_server.h, which takes
// ownership; only for those, whose tasks answer the peek (another server's
// task would serve its connection on the accept thread, when the queue
// peeks at it). shutdown()
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

// For the servers of bounded_server.h: their process_and_close_socket(sock)
// begins with `if (AnswerSocketPeek(sock)) return true;`. True (and sock
// noted) if this thread's guarded queue is peeking at the task: the
// connection must then not be touched. False otherwise.
bool AnswerSocketPeek(int sock);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_CONNECTION_GUARD_H_
