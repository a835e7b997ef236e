#include "lockprof/server/httplib/connection_deadlines.h"

#include "lockprof/agent/record/clock.h"

namespace lockprof::server {

namespace {

// The deadlines of the connection the current thread is serving.
thread_local ConnectionDeadlines* t_serving = nullptr;

}  // namespace

void ConnectionDeadlines::ArmIn(int64_t ns) {
  deadline.store(agent::MonotonicNanos() + ns, std::memory_order_relaxed);
}

ServingConnection::ServingConnection(ConnectionDeadlines* deadlines) {
  deadlines->ArmIn(deadlines->request_ns);
  t_serving = deadlines;
}

ServingConnection::~ServingConnection() { t_serving = nullptr; }

void RequestReceived() {
  if (t_serving == nullptr) return;
  t_serving->awaiting.store(false, std::memory_order_relaxed);
  t_serving->deadline.store(0, std::memory_order_relaxed);
}

void ResponseReady() {
  if (t_serving != nullptr) t_serving->ArmIn(t_serving->response_ns);
}

void ResponseSent() {
  if (t_serving == nullptr) return;
  t_serving->ArmIn(t_serving->idle_ns);
  t_serving->awaiting.store(true, std::memory_order_relaxed);
}

}  // namespace lockprof::server
