// The real pthread functions, for the interposer to call.
//
// The interposer (interpose_*.cc) defines pthread_mutex_lock & co.; the
// definitions it wraps are glibc's. They are reached without dlsym() where
// glibc allows it, because a lock taken inside dlsym(), malloc() or the
// dynamic loader before the interposer is ready must still work:
//  * The hot functions (mutex lock/trylock/unlock, rwlock rd/wr/try/unlock)
//    are glibc's own exported aliases (__pthread_mutex_lock, ...), as the
//    loader bound them: no lookup, usable from the first instruction of the
//    process. They are called through pointers (HotFunctions) that the
//    first call fills, because a program may define an alias itself: a
//    sanitizer runtime intercepts __pthread_mutex_lock and _unlock, and its
//    interceptors have no real function behind them (glibc exports the
//    aliases as compatibility symbols, which their dlsym() cannot find).
//    An alias bound outside libc is replaced by libc's own, looked up in
//    libc with dlvsym().
//  * The rest (timed and clock variants, condition waits) are looked up once
//    with dlvsym(RTLD_NEXT, name, version) - the version matters:
//    pthread_cond_wait's oldest version is the pre-2003 condition variable,
//    which plain dlsym() may return - eagerly from a constructor, or on first
//    use if a call comes earlier. A call made while this thread is looking
//    them up (a custom malloc locking inside dlvsym) cannot be served and
//    aborts with a message; glibc's own allocator and loader lock with
//    internal locks, not these functions.
//
// Thread-safety: every function here may be called from any thread at any
// time; the lookup is idempotent and publishes with release/acquire.
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_REAL_PTHREAD_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_REAL_PTHREAD_H_

#include <pthread.h>
#include <time.h>

#include <atomic>

namespace lockprof::interpose {

// glibc's uncontended entry points. Each starts as a binder that fills them
// all and calls on; then a call costs what a call through the GOT does (one
// load, one indirect call). Binding is idempotent: threads racing through it
// store the same pointers. Hidden, so that the load is RIP-relative.
struct HotFunctions {
  using MutexFn = int (*)(pthread_mutex_t*);
  using RwFn = int (*)(pthread_rwlock_t*);
  std::atomic<MutexFn> mutex_lock, mutex_trylock, mutex_unlock;
  std::atomic<RwFn> rwlock_rdlock, rwlock_wrlock, rwlock_tryrdlock, rwlock_trywrlock, rwlock_unlock;
};
extern HotFunctions g_hot __attribute__((visibility("hidden")));

// Calls glibc's function `fn` (a member of HotFunctions) on `lock`.
template <typename Fn, typename Lock>
inline int CallGlibc(std::atomic<Fn> HotFunctions::*fn, Lock* lock) {
  return (g_hot.*fn).load(std::memory_order_relaxed)(lock);
}

// Functions found with dlvsym(), filled by ResolveRealFunctions().
struct RealFunctions {
  int (*mutex_timedlock)(pthread_mutex_t*, const timespec*);
  int (*mutex_clocklock)(pthread_mutex_t*, clockid_t, const timespec*);
  int (*rwlock_timedrdlock)(pthread_rwlock_t*, const timespec*);
  int (*rwlock_timedwrlock)(pthread_rwlock_t*, const timespec*);
  int (*rwlock_clockrdlock)(pthread_rwlock_t*, clockid_t, const timespec*);
  int (*rwlock_clockwrlock)(pthread_rwlock_t*, clockid_t, const timespec*);
  int (*cond_wait)(pthread_cond_t*, pthread_mutex_t*);
  int (*cond_timedwait)(pthread_cond_t*, pthread_mutex_t*, const timespec*);
  int (*cond_clockwait)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*);
};

// glibc's pthread_mutex_init and _destroy, through its exported aliases
// (no sanitizer runtime defines these): usable from the first instruction
// of the process, as the hot functions are.
int RealMutexInit(pthread_mutex_t* m, const pthread_mutexattr_t* attr);
int RealMutexDestroy(pthread_mutex_t* m);

// The looked-up functions; resolves them on first use. Never null members
// (a function glibc lacks aborts the process with a message on lookup).
const RealFunctions& Real();

// Looks them all up now (the interposer's constructor calls it).
void ResolveRealFunctions();

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_REAL_PTHREAD_H_
