#include "lockprof/server/httplib/task_pool.h"

#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "lockprof/agent/record/own_thread.h"

namespace lockprof::server {

namespace {

// Shared by the queue and its threads: a thread that is exiting may still
// touch it after shutdown() returned and the queue was destroyed.
struct PoolState {
  PoolState(size_t max, std::chrono::milliseconds idle) : max_threads(max), idle_timeout(idle) {}

  const size_t max_threads;
  const std::chrono::milliseconds idle_timeout;
  std::mutex mu;
  std::condition_variable work;  // A job arrived, or shutdown.
  std::condition_variable exited;
  std::deque<std::function<void()>> jobs;  // Guarded by mu.
  size_t threads = 0;                      // Guarded by mu.
  size_t idle = 0;                         // Guarded by mu.
  bool shutdown = false;                   // Guarded by mu.
};

void Worker(std::shared_ptr<PoolState> s) {
  std::unique_lock<std::mutex> lock(s->mu);
  for (;;) {
    if (!s->jobs.empty()) {
      std::function<void()> job = std::move(s->jobs.front());
      s->jobs.pop_front();
      lock.unlock();
      job();
      job = nullptr;  // Closes the connection outside the lock.
      lock.lock();
      continue;
    }
    if (s->shutdown) break;
    ++s->idle;
    const bool woken =
        s->work.wait_for(lock, s->idle_timeout, [&] { return !s->jobs.empty() || s->shutdown; });
    --s->idle;
    if (!woken) break;  // Idle too long.
  }
  --s->threads;
  s->exited.notify_all();
}

class ElasticTaskQueue final : public httplib::TaskQueue {
 public:
  ElasticTaskQueue(size_t max_threads, std::chrono::milliseconds idle_timeout)
      : state_(std::make_shared<PoolState>(max_threads < 1 ? 1 : max_threads, idle_timeout)) {}
  ~ElasticTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->jobs.push_back(std::move(fn));
    if (state_->idle < state_->jobs.size() && state_->threads < state_->max_threads) {
      std::thread worker = agent::TryStartOwnThread([s = state_] { Worker(s); });
      if (worker.joinable()) {
        ++state_->threads;
        worker.detach();
        return;
      }
      // No thread can be started (the process is at its limit). The
      // workers there are take the job in turn; with none, it runs here,
      // on the accept thread, bounded by the connection's deadlines: a job
      // left queued would hold its connection's socket until a thread could
      // be started, and one dropped would leak it.
      if (state_->threads == 0) {
        std::function<void()> job = std::move(state_->jobs.back());
        state_->jobs.pop_back();
        lock.unlock();
        job();
        return;
      }
    }
    state_->work.notify_one();
  }

  void shutdown() override {
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->shutdown = true;
    state_->work.notify_all();
    state_->exited.wait(lock, [&] { return state_->threads == 0; });
  }

 private:
  std::shared_ptr<PoolState> state_;
};

}  // namespace

httplib::TaskQueue* NewElasticTaskQueue(size_t max_threads,
                                        std::chrono::milliseconds idle_timeout) {
  return new ElasticTaskQueue(max_threads, idle_timeout);
}

}  // namespace lockprof::server
