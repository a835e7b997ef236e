// Compiled, never run, by the thread_safety_* tests (tests/CMakeLists.txt)
// with clang's -Wthread-safety -Werror: one case per
// LOCKPROF_CASE value. Only the guarded case may compile; the others must be
// rejected with the analysis's own message, which shows that Mutex is a
// capability, GUARDED_BY works with it, and MutexLock is a scoped lock that
// holds it for its scope and no longer.
#include "lockprof/primitives/mutex.h"

struct Account {
  lockprof::Mutex mu;
  int balance ABSL_GUARDED_BY(mu) = 0;
};

int Read(Account& a) {
#if LOCKPROF_CASE == 1  // Guarded: compiles.
  lockprof::MutexLock lock(&a.mu);
  return a.balance;
#elif LOCKPROF_CASE == 2  // No lock: rejected.
  return a.balance;
#elif LOCKPROF_CASE == 3  // After the MutexLock's scope: rejected.
  { lockprof::MutexLock lock(&a.mu); }
  return a.balance;
#endif
}
