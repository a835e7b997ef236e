// StartOwnThread: every thread lockprof starts (the admin server's listener
// and workers, its request and watchdog threads, the uploader's) runs its
// whole life inside RecorderScope, so that no lock it takes - lockprof's
// own, or one of a library it calls (httplib's, libdw's, OpenSSL's) - is
// recorded, profiled or tracked as the program's. That matters where
// pthread locks are interposed: in the link-time form (lockprof::interpose)
// lockprof's code lies in the program's own object, and only the thread
// tells its locks apart; in the preload library a lock's caller tells only
// lockprof's own calls apart, not those of the libraries it calls. So the
// program's pthread_create is never interposed: no unwind at each thread
// start, nothing between the program and its threads.
//
// They also run with SIGPIPE blocked: a write to a connection whose peer
// is gone (OpenSSL writes TLS records with write(2), without
// MSG_NOSIGNAL) fails with EPIPE on that thread instead of raising SIGPIPE,
// whose disposition is the program's (the admin server restores it after
// httplib sets it to ignored). Blocked, the signal stays pending on the
// thread that wrote, never delivered.
//
// Thread-safety: as std::thread's constructor.
#ifndef LOCKPROF_AGENT_RECORD_OWN_THREAD_H_
#define LOCKPROF_AGENT_RECORD_OWN_THREAD_H_

#include <pthread.h>
#include <signal.h>

#include <system_error>
#include <thread>
#include <utility>

#include "lockprof/agent/record/record.h"

namespace lockprof::agent {

// std::thread(std::forward<F>(f)), with `f` run inside RecorderScope.
template <typename F>
std::thread StartOwnThread(F&& f) {
  return std::thread([f = std::forward<F>(f)]() mutable {
    RecorderScope scope;
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    f();
  });
}

// StartOwnThread, or a thread that is not joinable if none can be started
// (pthread_create's EAGAIN: a container's pids.max, RLIMIT_NPROC): never
// the std::system_error that, thrown on a thread of lockprof's or into the
// program's code, would end the program. `f` is destroyed then, unrun:
// callers that must answer anyway keep what they need outside it.
template <typename F>
std::thread TryStartOwnThread(F&& f) {
  try {
    return StartOwnThread(std::forward<F>(f));
  } catch (const std::system_error&) {
    return std::thread();
  }
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_OWN_THREAD_H_
