// The start/stop scaffolding of lockprof's background services (the admin
// server, the Pyroscope uploader): one running instance at a time, kept
// consistent across fork(), stopped at exit, started from the environment
// before main.
#ifndef LOCKPROF_AGENT_BASE_SERVICE_H_
#define LOCKPROF_AGENT_BASE_SERVICE_H_

#include <cstdlib>
#include <mutex>

#include "absl/status/status.h"
#include "lockprof/agent/base/fork.h"

namespace lockprof::agent {

// The process-wide slot of service T: its running instance, if any, and the
// mutex that starting and stopping it take (request handling and the
// service's own threads never do). That mutex is never destroyed and is held
// across fork() at `rank`, so that a child never sees an instance half
// started or half forgotten. In a forked child the slot forgets the parent's
// instance, whose threads the child does not have: the instance is leaked on
// purpose (stopping or destroying it would join threads that do not exist
// there), so that the child may start its own and its exit handler does not
// stop the parent's. Then `in_child(forgotten)` runs (forgotten may be null)
// for whatever else the child must let go of; it runs inside fork() (see
// OnForkChild in fork.h).
//
// One slot per T, as a constant-initialised global that is never destroyed:
//   ServiceSlot<Uploader> g_slot(ForkRank::kUploader, &ForgetInChild);
template <typename T>
class ServiceSlot {
 public:
  constexpr ServiceSlot(ForkRank rank, void (*in_child)(T* forgotten))
      : rank_(rank), in_child_(in_child) {}
  ServiceSlot(const ServiceSlot&) = delete;
  ServiceSlot& operator=(const ServiceSlot&) = delete;

  // Taken to start or stop the service, and to read or set instance.
  std::mutex& mutex() {
    static std::mutex* const mu = [this] {
      self_ = this;
      return NewMutexHeldAcrossFork(rank_, &ForgetInChild);
    }();
    return *mu;
  }

  // The running instance, or null. Guarded by mutex().
  T* instance = nullptr;

  // Makes `stop` run at exit, once however many times this is called. Call
  // it after whatever the service needs at exit was first used: exit
  // handlers run in the reverse order of registration, static destructors
  // included.
  void StopAtExit(void (*stop)()) {
    static std::once_flag once;
    std::call_once(once, [stop] { std::atexit(stop); });
  }

 private:
  // No other thread exists; mutex() was held across fork(): consistent.
  static void ForgetInChild() {
    T* forgotten = self_->instance;
    self_->instance = nullptr;
    if (self_->in_child_ != nullptr) self_->in_child_(forgotten);
  }

  static inline ServiceSlot* self_ = nullptr;
  const ForkRank rank_;
  void (*const in_child_)(T*);
};

// For a service that the environment starts with the program (from a
// static initialiser): runs `start`, which returns NotFound when the
// service's variables are unset, and reports any other error on stderr as
// "lockprof: <what>: <error>". Returns whether the service started.
bool AutoStartFromEnvironment(const char* what, absl::Status (*start)());

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_BASE_SERVICE_H_
