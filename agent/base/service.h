// The start/stop scaffolding of lockprof's background services (the admin
// server, the Pyroscope uploader): one running instance at a time, kept
// consistent across fork(), stopped at exit, started from the environment
// before main, and one precedence rule between the environment and code.
//
// The precedence rule: the environment wins the address (the admin server's
// LOCKPROF_ADMIN_ADDR, the uploader's LOCKPROF_PYROSCOPE_URL); the call in
// code succeeds and takes over. A program whose code starts a service that
// an operator also started through the environment must start either way:
// configuration never turns into a failed start. So a coded start finds the
// instance the environment started, replaces it with one built from the
// code's settings (token, TLS, limits, app name, labels...) but at the
// environment's address, and says once which address is served. Only the
// environment's instance is taken over: a second start from code is a bug
// in the program, and still answers AlreadyExists.
#ifndef LOCKPROF_AGENT_BASE_SERVICE_H_
#define LOCKPROF_AGENT_BASE_SERVICE_H_

#include <cstdlib>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lockprof/agent/base/fork.h"

namespace lockprof::agent {

// True inside AutoStartFromEnvironment's `start` on this thread: the start
// the environment asked for, which a start from code may take over.
bool StartingFromEnvironment();

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

  // For a start, holding mutex(): applies the precedence rule (above).
  // Returns null when no instance runs, the instance to take over when the
  // environment started it and this start comes from code (the slot is then
  // empty: the caller stops it, hands over what it carries, and Install()s
  // its own), or AlreadyExists (`running`, the error's message) otherwise.
  absl::StatusOr<T*> Claim(const char* running) {
    if (instance == nullptr) return nullptr;
    if (!from_environment_ || StartingFromEnvironment()) return absl::AlreadyExistsError(running);
    T* taken = instance;
    instance = nullptr;
    return taken;
  }

  // Holding mutex(): `started` is the running instance, and remembers
  // whether the environment started it.
  void Install(T* started) {
    instance = started;
    from_environment_ = StartingFromEnvironment();
  }

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
  bool from_environment_ = false;  // Guarded by mutex().
};

// For a service that the environment starts with the program (from a
// static initialiser): runs `start`, which returns NotFound when the
// service's variables are unset, and reports any other error on stderr as
// "lockprof: <what>: <error>" (once: the program runs on without the
// service). Returns whether the service started.
bool AutoStartFromEnvironment(const char* what, absl::Status (*start)());

// Says once on stderr, as "lockprof: <what>: <message>", which address a
// start from code serves under the precedence rule.
void ReportPrecedence(const char* what, const std::string& message);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_BASE_SERVICE_H_
