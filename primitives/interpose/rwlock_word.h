// What the interposer reads in glibc's pthread_rwlock_t: whether a release
// may have waiters to settle, and whether readers wait for a waiting
// writer.
//
// glibc's rwlock (nptl/pthread_rwlock_common.c, since glibc 2.25) keeps its
// state in __data.__readers: bit 0 the write phase, bit 1 a writer holds or
// waits (WRLOCKED), bit 2 readers wait for a read phase that a
// writer-preferring lock withholds (RWAITING), and the number of readers from
// bit 3 up (in a write phase: the readers waiting for it to end). A writer
// that waits for the writer holding the lock marks __writers_futex's bit 1.
// The layout of the struct is glibc's ABI (<bits/struct_rwlock.h>); the
// meaning of the bits is not, so RwlockWordKnown() checks it once, on a
// private lock, and the release settles whenever it cannot tell.
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_RWLOCK_WORD_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_RWLOCK_WORD_H_

#include <pthread.h>

#include "lockprof/agent/record/event_tags.h"

namespace lockprof::interpose {

inline constexpr unsigned kRwWritePhase = 1;
inline constexpr unsigned kRwWriteLocked = 2;
inline constexpr unsigned kRwReadersWaiting = 4;
inline constexpr unsigned kRwReaderShift = 3;
inline constexpr unsigned kRwWriterFutexWaiters = 2;

inline unsigned RwlockReaders(const pthread_rwlock_t* rw) {
  return __atomic_load_n(&rw->__data.__readers, __ATOMIC_RELAXED);
}

// True once the running glibc's rwlock is known to keep the state above
// (checked on first call; false: every release settles, as if it might have
// waiters).
bool RwlockWordKnown();

// True if threads may be blocked on `rw`, which the caller holds and is about
// to release: a release in a write phase (the writer's) when readers or
// writers wait for it; one in a read phase (a reader's) when a writer waits
// for the readers to leave, or readers wait behind that writer. A false
// "maybe" costs one waiter-table lookup; a waiter that registered but has
// not yet reached glibc's word is charged to a later release, as for a
// mutex (mutex_word.h). Every reader's release settles while a writer
// waits: each is charged the waiting since the one before it.
inline bool RwlockMayHaveWaiters(const pthread_rwlock_t* rw) {
  if (!RwlockWordKnown()) return true;
  const unsigned r = RwlockReaders(rw);
  if ((r & kRwWritePhase) != 0) {
    return (r >> kRwReaderShift) != 0 ||
           (__atomic_load_n(&rw->__data.__writers_futex, __ATOMIC_RELAXED) &
            kRwWriterFutexWaiters) != 0;
  }
  return (r & (kRwWriteLocked | kRwReadersWaiting)) != 0;
}

// Whether `rw` lets a reader in while other readers hold it even with a
// writer waiting (EventTags::readers_first). __flags keeps the kind the
// lock was made with: glibc's default, PTHREAD_RWLOCK_PREFER_READER_NP,
// and PTHREAD_RWLOCK_PREFER_WRITER_NP, which glibc treats alike, let the
// reader in; PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP makes it wait
// for the writer. False where the word is not known: every read hold then
// counts, as on lockprof::SharedMutex.
inline bool RwlockReadersFirst(const pthread_rwlock_t* rw) {
  return RwlockWordKnown() && __atomic_load_n(&rw->__data.__flags, __ATOMIC_RELAXED) !=
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}

// The tags of an acquisition of `lock` named `name` in `mode`: kNone for a
// mutex, kRead or kWrite for an rwlock.
inline agent::EventTags LockTags(const void* lock, const char* name, agent::LockMode mode) {
  agent::EventTags tags{name, mode};
  tags.readers_first = mode != agent::LockMode::kNone &&
                       RwlockReadersFirst(static_cast<const pthread_rwlock_t*>(lock));
  return tags;
}

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_RWLOCK_WORD_H_
