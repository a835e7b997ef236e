// The admin server's request threads.
//
// httplib's default pool has a fixed number of threads (8 here: the count is
// compiled into Debian's library), and a thread serves one connection until
// it closes. Eight ?seconds=30 requests, or eight idle keep-alive
// connections, would leave nothing to answer the next request. This queue
// instead starts a thread whenever a connection arrives and no thread is
// idle, up to `max_threads` (beyond that connections queue), and lets a
// thread that found nothing to do for `idle_timeout` exit, so an admin
// server nobody talks to holds no threads at all.
#ifndef LOCKPROF_SERVER_HTTPLIB_TASK_POOL_H_
#define LOCKPROF_SERVER_HTTPLIB_TASK_POOL_H_

#include <chrono>
#include <cstddef>

namespace httplib {
class TaskQueue;
}

namespace lockprof::server {

// For httplib::Server::new_task_queue, which takes ownership. shutdown()
// runs what is queued, then waits for every thread to finish.
httplib::TaskQueue* NewElasticTaskQueue(
    size_t max_threads, std::chrono::milliseconds idle_timeout = std::chrono::seconds(30));

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_TASK_POOL_H_
