#include "lockprof/primitives/interpose/real_pthread.h"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace lockprof::interpose {
namespace {

RealFunctions g_real;
// 0: not looked up, 1: a thread is looking them up, 2: done.
std::atomic<int> g_state{0};
thread_local bool t_resolving = false;

[[noreturn]] void Die(const char* what) {
  static const char kPrefix[] = "lockprof interposer: cannot find the real ";
  ssize_t ignored = write(2, kPrefix, sizeof(kPrefix) - 1);
  ignored = write(2, what, std::strlen(what));
  ignored = write(2, "\n", 1);
  (void)ignored;
  std::abort();
}

template <typename F>
void Find(F* out, const char* name, const char* version) {
  void* f = dlvsym(RTLD_NEXT, name, version);
  // Another libc than glibc's versions (or a newer default): the default one.
  if (f == nullptr) f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) Die(name);
  *out = reinterpret_cast<F>(f);
}

}  // namespace

void ResolveRealFunctions() {
  if (g_state.load(std::memory_order_acquire) == 2) return;
  if (t_resolving) Die("pthread function (called while looking them up)");
  int expected = 0;
  if (!g_state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
    // Another thread is looking them up: a few microseconds, once.
    while (g_state.load(std::memory_order_acquire) != 2) sched_yield();
    return;
  }
  t_resolving = true;
  RealFunctions& r = g_real;
  Find(&r.mutex_timedlock, "pthread_mutex_timedlock", "GLIBC_2.2.5");
  Find(&r.mutex_clocklock, "pthread_mutex_clocklock", "GLIBC_2.30");
  Find(&r.rwlock_timedrdlock, "pthread_rwlock_timedrdlock", "GLIBC_2.2.5");
  Find(&r.rwlock_timedwrlock, "pthread_rwlock_timedwrlock", "GLIBC_2.2.5");
  Find(&r.rwlock_clockrdlock, "pthread_rwlock_clockrdlock", "GLIBC_2.30");
  Find(&r.rwlock_clockwrlock, "pthread_rwlock_clockwrlock", "GLIBC_2.30");
  Find(&r.cond_wait, "pthread_cond_wait", "GLIBC_2.3.2");
  Find(&r.cond_timedwait, "pthread_cond_timedwait", "GLIBC_2.3.2");
  Find(&r.cond_clockwait, "pthread_cond_clockwait", "GLIBC_2.30");
  Find(&r.thread_create, "pthread_create", "GLIBC_2.34");
  t_resolving = false;
  g_state.store(2, std::memory_order_release);
}

const RealFunctions& Real() {
  if (__builtin_expect(g_state.load(std::memory_order_acquire) != 2, 0)) ResolveRealFunctions();
  return g_real;
}

}  // namespace lockprof::interpose
