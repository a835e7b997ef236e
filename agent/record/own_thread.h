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
// Thread-safety: as std::thread's constructor.
#ifndef LOCKPROF_AGENT_RECORD_OWN_THREAD_H_
#define LOCKPROF_AGENT_RECORD_OWN_THREAD_H_

#include <thread>
#include <utility>

#include "lockprof/agent/record/record.h"

namespace lockprof::agent {

// std::thread(std::forward<F>(f)), with `f` run inside RecorderScope.
template <typename F>
std::thread StartOwnThread(F&& f) {
  return std::thread([f = std::forward<F>(f)]() mutable {
    RecorderScope scope;
    f();
  });
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_OWN_THREAD_H_
