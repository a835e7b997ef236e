#include "lockprof/agent/thread_lock_wait.h"

#include "lockprof/agent/record/thread_state.h"

namespace lockprof {

ThreadLockWait ThisThreadLockWait() {
  const agent::ThreadState& s = agent::tls_state;
  return {s.lock_wait_ns, s.lock_waits, s.condition_wait_ns, s.condition_waits};
}

}  // namespace lockprof
