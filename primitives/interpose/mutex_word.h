// What the interposer reads in glibc's pthread_mutex_t (the layout of
// <bits/struct_mutex.h>, part of glibc's ABI).
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_MUTEX_WORD_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_MUTEX_WORD_H_

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace lockprof::interpose {

// glibc's lock word of `m`: 0 unlocked, 1 locked, 2 locked and maybe
// waited for, for the kinds that keep no owner in it (below).
inline unsigned MutexWord(const pthread_mutex_t* m) {
  return __atomic_load_n(reinterpret_cast<const unsigned*>(&m->__data.__lock), __ATOMIC_RELAXED);
}

// True if threads may be blocked on `m` (a release must settle its waiters).
// glibc's lock word is 2 for a locked normal, recursive, error-checking or
// adaptive mutex that threads may wait for, and has FUTEX_WAITERS (bit 31)
// set for robust and priority-inheritance ones (the rest of their word is
// the owner's thread id). A false "maybe" costs one waiter-table lookup; a waiter
// not yet visible here was not yet registered either, and its wait is
// charged to a later release. Priority-protected mutexes (the lock word also
// holds the ceiling) never report waiters: their contention is in the block
// profile only.
inline bool MutexMayHaveWaiters(const pthread_mutex_t* m) {
  const unsigned w = MutexWord(m);
  return (w == 2) | (w >> 31);
}

// True if the calling thread, which holds `m`, holds it more than once (a
// recursive mutex): its unlock does not end the critical section.
inline bool InnerRecursiveHold(const pthread_mutex_t* m) {
  return (m->__data.__kind & 3) == PTHREAD_MUTEX_RECURSIVE_NP && m->__data.__count > 1;
}

// glibc's PTHREAD_MUTEX_ROBUST_NORMAL_NP, _PRIO_INHERIT_NP and
// _PRIO_PROTECT_NP bits of a mutex's __kind (pthreadP.h), and
// _PSHARED_BIT.
inline constexpr int kMutexRobustOrProtocol = 0x70;
inline constexpr int kMutexShared = 0x80;

// True if `kind` (a mutex's __kind) is normal (the default) or adaptive,
// neither robust, priority-inheriting nor priority-protected: glibc lets
// any thread unlock such a mutex, checking no owner (a robust or
// priority-inheriting one answers another thread EPERM).
inline bool PlainMutexKind(int kind) {
  const int type = kind & 3;
  return (kind & kMutexRobustOrProtocol) == 0 &&
         (type == PTHREAD_MUTEX_TIMED_NP || type == PTHREAD_MUTEX_ADAPTIVE_NP);
}

// True if another thread than its holder may unlock `m` (PlainMutexKind),
// which the caller is unlocking. A priority-protected mutex is left out:
// its word holds its ceiling, and the unlock's fast path would never see
// it as handed off.
inline bool OthersMayUnlock(const pthread_mutex_t* m) {
  return PlainMutexKind(__atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED));
}

// True if `m` is held by thread `tid` and its kind makes a second lock()
// by that thread wait for good: a normal (the default) or adaptive mutex,
// neither robust, priority-inheriting, priority-protected nor shared
// between processes (whose __owner may be another process's thread of the
// same id, in another PID namespace), whose __owner (which glibc records
// for these kinds too) is `tid`. glibc lets another thread unlock such a
// mutex, but that is undefined behaviour in POSIX: a program within it
// never gets the lock back.
inline bool WaitNeverEndsFor(const pthread_mutex_t* m, int tid) {
  const int kind = __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
  return (kind & kMutexShared) == 0 && PlainMutexKind(kind) &&
         __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) == tid;
}

// True if glibc will refuse the calling thread's unlock of `m` (EPERM): a
// kind that checks its owner (error-checking, recursive, robust, priority)
// held by another thread. Its waiters' waiting is then not settled: the
// holder's release is charged it.
inline bool UnlockRefusedToCaller(const pthread_mutex_t* m) {
  if (PlainMutexKind(__atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED))) return false;
  return __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) != int(syscall(SYS_gettid));
}

// True if an unlock of `m` by the calling thread must settle its waiters.
inline bool SettlesWaiters(const pthread_mutex_t* m) {
  return MutexMayHaveWaiters(m) && !UnlockRefusedToCaller(m);
}

// After glibc's pthread_mutex_trylock returned ENOTRECOVERABLE to the
// calling thread: glibc (2.36 at least) then leaves the robust mutex's lock
// word holding the caller's id (it compares the word's old value, 0, with
// the id before releasing), where its pthread_mutex_lock releases it. The
// interposer's lock calls try first, so they release it as glibc's lock
// would: the word cleared, a waiter woken (a robust mutex's futex is
// shared). Nothing if the word is not the caller's (a glibc without that
// slip).
inline void ReleaseUnrecoverableTry(pthread_mutex_t* m) {
  auto* word = reinterpret_cast<unsigned*>(&m->__data.__lock);
  const auto tid = unsigned(syscall(SYS_gettid));
  unsigned w = __atomic_load_n(word, __ATOMIC_RELAXED);
  while ((w & FUTEX_TID_MASK) == tid) {
    if (__atomic_compare_exchange_n(word, &w, 0u, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
      if ((w & FUTEX_WAITERS) != 0) syscall(SYS_futex, word, FUTEX_WAKE, 1, nullptr, nullptr, 0);
      return;
    }
  }
}

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_MUTEX_WORD_H_
