#include "lockprof/server/httplib/connection_guard.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/own_thread.h"
#include "lockprof/server/httplib/connection_deadlines.h"
#include "lockprof/server/httplib/task_pool.h"

namespace lockprof::server {

namespace {

std::atomic<uint64_t> g_timed_out{0};
std::atomic<uint64_t> g_refused{0};
std::atomic<uint64_t> g_open{0};

// While this thread's guarded queue peeks at a task: where the task's
// socket goes (see the header).
thread_local int* t_peeked_socket = nullptr;

// The socket that `task`, a bounded server's, serves; -1 if it did not say
// (see the header). Runs on the accept thread.
int PeekSocket(const std::function<void()>& task) {
  int sock = -1;
  t_peeked_socket = &sock;
  task();
  t_peeked_socket = nullptr;
  return sock;
}

int64_t Nanos(std::chrono::nanoseconds d) { return int64_t(d.count()); }

// Once the server stops, how long a request being handled or answered may
// still take: enough for a profile to reach a client that reads it, not the
// write deadline that a client that does not read would hold the stop (and
// the program's exit) for.
constexpr std::chrono::seconds kStopGrace{1};

// One accepted connection while its task is queued or running.
struct Conn {
  int fd = -1;               // Our duplicate of httplib's socket; closed by the queue only.
  bool evicted = false;      // Shut down for a newer connection. Guarded by mu_.
  bool cut_at_stop = false;  // Shut down as the server stopped. Guarded by mu_.
  ConnectionDeadlines deadlines;
};

class GuardedTaskQueue final : public httplib::TaskQueue {
 public:
  explicit GuardedTaskQueue(const ConnectionLimits& limits)
      : limits_(limits),
        inner_(NewElasticTaskQueue(limits.max_threads)),
        watchdog_(agent::TryStartOwnThread([this] { Watch(); })) {}
  ~GuardedTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    // None could be started before (the process at its thread limit):
    // deadlines are enforced once one is.
    if (!watchdog_.joinable()) watchdog_ = agent::TryStartOwnThread([this] { Watch(); });
    const int sock = PeekSocket(fn);
    std::shared_ptr<Conn> conn = sock >= 0 ? Track(sock) : nullptr;
    bool refused = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (conn != nullptr && !MakeRoom()) {
        // Over the cap: end the connection before httplib reads from it.
        g_refused.fetch_add(1, std::memory_order_relaxed);
        shutdown_socket(conn->fd);
        Forget(conn);
        refused = true;
      } else if (conn != nullptr) {
        live_.push_back(conn);
        g_open.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (refused) {
      // httplib's task finds the socket shut and closes it at once, here.
      fn();
      return;
    }
    if (conn == nullptr) {  // No descriptor left to dup: serve it unguarded.
      inner_->enqueue(std::move(fn));
      return;
    }
    inner_->enqueue([this, conn, fn = std::move(fn)] {
      {
        const ServingConnection serving(&conn->deadlines);
        fn();  // Closes httplib's descriptor; ours keeps the socket.
      }
      std::lock_guard<std::mutex> lock(mu_);
      live_.remove(conn);
      g_open.fetch_sub(1, std::memory_order_relaxed);
      Forget(conn);
    });
  }

  void shutdown() override {
    if (inner_ == nullptr) return;
    {
      // The server stops (it no longer accepts): connections that have not
      // delivered a request (queued, in their TLS handshake, reading one, or
      // idle between two) end now instead of holding the stop, and with it
      // the program, until their deadline. Requests being handled or
      // answered finish.
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& c : live_) {
        if (c->deadlines.awaiting.load(std::memory_order_relaxed)) shutdown_socket(c->fd);
      }
      // The watchdog ends the others kStopGrace from now.
      stop_by_ = agent::MonotonicNanos() + Nanos(kStopGrace);
    }
    inner_->shutdown();
    inner_.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
  }

 private:
  // Ends a connection now: wakes httplib's poll on it, and (linger 0) makes
  // the final close reset it, dropping what is still queued for the client
  // instead of trickling it out to a client that reads slowly.
  static void shutdown_socket(int fd) {
    const linger abort{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    ::shutdown(fd, SHUT_RDWR);
  }

  // Whether a new connection may join live_: under the cap, or once the
  // oldest connection that awaits a request (a client that connected and
  // sends nothing, or an idle keep-alive) has been shut down for it, so that
  // idle connections cannot keep every new client out. Evicted connections
  // leave live_ when their task has run (at once: their socket is shut),
  // and are counted apart; at most max_connections of them wait for that.
  // Requires mu_.
  bool MakeRoom() {
    size_t evicted = 0;
    std::shared_ptr<Conn> oldest_awaiting;
    for (const auto& c : live_) {
      if (c->evicted) {
        ++evicted;
      } else if (oldest_awaiting == nullptr &&
                 c->deadlines.awaiting.load(std::memory_order_relaxed)) {
        oldest_awaiting = c;
      }
    }
    if (live_.size() - evicted < limits_.max_connections) return true;
    if (oldest_awaiting == nullptr || evicted >= limits_.max_connections) return false;
    oldest_awaiting->evicted = true;
    g_refused.fetch_add(1, std::memory_order_relaxed);
    shutdown_socket(oldest_awaiting->fd);
    return true;
  }

  // Closes our descriptor. Requires mu_ (the watchdog may be shutting it down).
  void Forget(const std::shared_ptr<Conn>& conn) { close(conn->fd); }

  // A connection for `sock`, which httplib has just accepted on this
  // thread, holding a duplicate of it; nullptr if it cannot be duplicated.
  std::shared_ptr<Conn> Track(int sock) const {
    // dup, not F_DUPFD_CLOEXEC: sanitizers follow dup; the flag follows at once.
    const int held = dup(sock);
    if (held < 0) return nullptr;
    fcntl(held, F_SETFD, FD_CLOEXEC);
    // httplib accepts without SOCK_CLOEXEC.
    fcntl(sock, F_SETFD, FD_CLOEXEC);
    auto conn = std::make_shared<Conn>();
    conn->fd = held;
    ConnectionDeadlines& d = conn->deadlines;
    d.request_ns = Nanos(limits_.request_timeout);
    d.response_ns = Nanos(limits_.response_timeout);
    d.idle_ns = Nanos(limits_.keep_alive_timeout) + d.request_ns;
    return conn;
  }

  // Shuts down the connections past their deadline, every 50 ms.
  void Watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(50));
      const int64_t now = agent::MonotonicNanos();
      for (const auto& conn : live_) {
        if (stop_by_ != 0 && now > stop_by_ && !conn->cut_at_stop) {
          conn->cut_at_stop = true;
          shutdown_socket(conn->fd);
          continue;
        }
        std::atomic<int64_t>& deadline = conn->deadlines.deadline;
        const int64_t d = deadline.load(std::memory_order_relaxed);
        if (d != 0 && now > d) {
          // Counted first: the client may see the reset at once.
          g_timed_out.fetch_add(1, std::memory_order_relaxed);
          deadline.store(0, std::memory_order_relaxed);
          shutdown_socket(conn->fd);
        }
      }
    }
  }

  const ConnectionLimits limits_;
  std::unique_ptr<httplib::TaskQueue> inner_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::list<std::shared_ptr<Conn>> live_;  // Guarded by mu_.
  bool stop_ = false;                      // Guarded by mu_.
  int64_t stop_by_ = 0;   // When the server stops: every connection ends by then. Guarded by mu_.
  std::thread watchdog_;  // Last: starts after the rest exists.
};

}  // namespace

httplib::TaskQueue* NewGuardedTaskQueue(const ConnectionLimits& limits) {
  return new GuardedTaskQueue(limits);
}

uint64_t ConnectionsTimedOut() { return g_timed_out.load(std::memory_order_relaxed); }
uint64_t ConnectionsRefused() { return g_refused.load(std::memory_order_relaxed); }
uint64_t ConnectionsOpen() { return g_open.load(std::memory_order_relaxed); }

bool AnswerSocketPeek(int sock) {
  if (t_peeked_socket == nullptr) return false;
  *t_peeked_socket = sock;
  return true;
}

}  // namespace lockprof::server
