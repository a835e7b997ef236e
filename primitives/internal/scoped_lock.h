// Scoped locks that clang's -Wthread-safety understands, for lockprof's own
// templates (libstdc++'s std::lock_guard and std::shared_lock carry no
// annotations, so data guarded by the lock would look unguarded to it).
// Their frames are lockprof::internal:: ones: trimmed from profiles, so a
// release charges the function that called into the lockprof type.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_SCOPED_LOCK_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_SCOPED_LOCK_H_

#include "absl/base/thread_annotations.h"

namespace lockprof::internal {

// Holds `mu` exclusively (lock/unlock) for its lifetime.
template <typename M>
class ABSL_SCOPED_LOCKABLE ExclusiveLock {
 public:
  explicit ExclusiveLock(M& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~ExclusiveLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  ExclusiveLock(const ExclusiveLock&) = delete;
  ExclusiveLock& operator=(const ExclusiveLock&) = delete;

 private:
  M& mu_;
};

// Holds `mu` shared (lock_shared/unlock_shared) for its lifetime.
template <typename M>
class ABSL_SCOPED_LOCKABLE SharedLock {
 public:
  explicit SharedLock(M& mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock_shared(); }
  ~SharedLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }
  SharedLock(const SharedLock&) = delete;
  SharedLock& operator=(const SharedLock&) = delete;

 private:
  M& mu_;
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_SCOPED_LOCK_H_
