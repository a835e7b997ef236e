// The real pthread functions, for the interposer to call.
//
// The interposer (interpose_*.cc) defines pthread_mutex_lock & co.; the
// definitions it wraps are glibc's. They are reached without dlsym() where
// glibc allows it, because a lock taken inside dlsym(), malloc() or the
// dynamic loader before the interposer is ready must still work:
//  * The hot functions (mutex lock/trylock/unlock, rwlock rd/wr/try/unlock)
//    bind directly to glibc's own exported aliases (__pthread_mutex_lock,
//    ...), which nothing interposes: no lookup, usable from the first
//    instruction of the process.
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

// glibc exports these aliases as compatibility symbols only (no default
// version), so they are named with their version: a program can link them,
// and the name is not one the interposer defines.
#if defined(__x86_64__)
#define LOCKPROF_GLIBC_ALIAS(name) __asm__(".symver " #name "," #name "@GLIBC_2.2.5")
#else
#define LOCKPROF_GLIBC_ALIAS(name)
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
}
LOCKPROF_GLIBC_ALIAS(__pthread_mutex_lock);
LOCKPROF_GLIBC_ALIAS(__pthread_mutex_trylock);
LOCKPROF_GLIBC_ALIAS(__pthread_mutex_unlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_rdlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_wrlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_tryrdlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_trywrlock);
LOCKPROF_GLIBC_ALIAS(__pthread_rwlock_unlock);

namespace lockprof::interpose {

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
  int (*thread_create)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
};

// The looked-up functions; resolves them on first use. Never null members
// (a function glibc lacks aborts the process with a message on lookup).
const RealFunctions& Real();

// Looks them all up now (the interposer's constructor calls it).
void ResolveRealFunctions();

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_REAL_PTHREAD_H_
