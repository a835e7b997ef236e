#include "lockprof/primitives/interpose/real_pthread.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

// glibc exports these aliases as compatibility symbols only (no default
// version), so they are named with their version: a program can link them,
// and the name is not one the interposer defines.
#if defined(__x86_64__)
#define LOCKPROF_GLIBC_ALIAS(name) __asm__(".symver " #name "," #name "@GLIBC_2.2.5")
constexpr char kGlibcAliasVersion[] = "GLIBC_2.2.5";
#else
#define LOCKPROF_GLIBC_ALIAS(name)
constexpr char kGlibcAliasVersion[] = "";
#endif

extern "C" {
int __pthread_mutex_lock(pthread_mutex_t* m);
int __pthread_mutex_trylock(pthread_mutex_t* m);
int __pthread_mutex_unlock(pthread_mutex_t* m);
int __pthread_rwlock_rdlock(pthread_rwlock_t* rw);
int __pthread_rwlock_wrlock(pthread_rwlock_t* rw);
int __pthread_rwlock_tryrdlock(pthread_rwlock_t* rw);
int __pthread_rwlock_trywrlock(pthread_rwlock_t* rw);
int __pthread_rwlock_unlock(pthread_rwlock_t* rw);
int __pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* attr);
int __pthread_mutex_destroy(pthread_mutex_t* m);
}
LOCKPROF_GLIBC_ALIAS(__pthread_mutex_lock);
LOCKPROF_GLIBC_ALIAS(__pthread_mutex_trylock);
LOCKPROF_GLIBC_ALIAS(__pthread_mutex_unlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_rdlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_wrlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_tryrdlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_trywrlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_unlock);
LOCKPROF_GLIBC_ALIAS(__pthread_mutex_init);
LOCKPROF_GLIBC_ALIAS(__pthread_mutex_destroy);

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

// The address of glibc's alias `name`, `bound` as the loader bound it when
// that is libc's, else libc's own (a sanitizer runtime in the program
// defines some of them). `libc`: null where _dl_find_object cannot say.
template <typename F>
F GlibcAlias(F bound, const char* name, const dl_find_object* libc) {
  dl_find_object where;
  if (libc == nullptr || (_dl_find_object(reinterpret_cast<void*>(bound), &where) == 0 &&
                          where.dlfo_link_map == libc->dlfo_link_map)) {
    return bound;
  }
  // The version is what finds a compatibility symbol, and only glibc's: a
  // definition without one (a sanitizer's) does not match it.
  Find(&bound, name, kGlibcAliasVersion);
  return bound;
}

// Fills g_hot. Neither _dl_find_object() nor a libc-bound alias takes a lock
// or allocates, so this is safe wherever a lock may be taken; only the
// dlvsym() of an alias bound elsewhere could re-enter it, and that dies with
// a message rather than recursing.
void BindHotFunctions() {
  thread_local bool binding = false;
  if (binding) Die("pthread function (called while binding glibc's aliases)");
  binding = true;
  dl_find_object libc_object;
  const dl_find_object* libc =
      _dl_find_object(reinterpret_cast<void*>(&gnu_get_libc_version), &libc_object) == 0
          ? &libc_object
          : nullptr;
  // Each pointer from its alias, whose name is the one looked up.
#define LOCKPROF_BIND(member, alias) \
  g_hot.member.store(GlibcAlias(&alias, #alias, libc), std::memory_order_relaxed)
  LOCKPROF_BIND(mutex_lock, __pthread_mutex_lock);
  LOCKPROF_BIND(mutex_trylock, __pthread_mutex_trylock);
  LOCKPROF_BIND(mutex_unlock, __pthread_mutex_unlock);
  LOCKPROF_BIND(rwlock_rdlock, __pthread_rwlock_rdlock);
  LOCKPROF_BIND(rwlock_wrlock, __pthread_rwlock_wrlock);
  LOCKPROF_BIND(rwlock_tryrdlock, __pthread_rwlock_tryrdlock);
  LOCKPROF_BIND(rwlock_trywrlock, __pthread_rwlock_trywrlock);
  LOCKPROF_BIND(rwlock_unlock, __pthread_rwlock_unlock);
#undef LOCKPROF_BIND
  binding = false;
}

// What each hot function starts as: bind them all, then call on.
template <auto Member, typename Lock>
int BindThenCall(Lock* lock) {
  BindHotFunctions();
  return (g_hot.*Member).load(std::memory_order_relaxed)(lock);
}

}  // namespace

// Constant-initialised: the pointers are valid before any constructor runs.
HotFunctions g_hot = {
    &BindThenCall<&HotFunctions::mutex_lock, pthread_mutex_t>,
    &BindThenCall<&HotFunctions::mutex_trylock, pthread_mutex_t>,
    &BindThenCall<&HotFunctions::mutex_unlock, pthread_mutex_t>,
    &BindThenCall<&HotFunctions::rwlock_rdlock, pthread_rwlock_t>,
    &BindThenCall<&HotFunctions::rwlock_wrlock, pthread_rwlock_t>,
    &BindThenCall<&HotFunctions::rwlock_tryrdlock, pthread_rwlock_t>,
    &BindThenCall<&HotFunctions::rwlock_trywrlock, pthread_rwlock_t>,
    &BindThenCall<&HotFunctions::rwlock_unlock, pthread_rwlock_t>,
};

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
  t_resolving = false;
  g_state.store(2, std::memory_order_release);
}

int RealMutexInit(pthread_mutex_t* m, const pthread_mutexattr_t* attr) {
  return __pthread_mutex_init(m, attr);
}

int RealMutexDestroy(pthread_mutex_t* m) { return __pthread_mutex_destroy(m); }

const RealFunctions& Real() {
  if (__builtin_expect(g_state.load(std::memory_order_acquire) != 2, 0)) ResolveRealFunctions();
  return g_real;
}

}  // namespace lockprof::interpose
