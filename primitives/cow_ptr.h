// lockprof::CowPtr<T>: copy-on-write snapshots for read-mostly data.
//
// Readers take the current value as an immutable snapshot, without a lock:
//
//   lockprof::CowPtr<Config> config{"config"};
//
//   std::shared_ptr<const Config> c = config.Load();   // readers: never wait
//   Use(c->timeout, c->backends);                     // consistent snapshot
//
//   config.Update([&](const Config& old) {             // writers
//     Config next = old;
//     next.backends.push_back(b);
//     return next;
//   });
//
// A writer builds a whole new value and publishes it in one step; a reader
// sees the old value or the new one, never a mix, and keeps its snapshot
// alive for as long as it holds the shared_ptr.
//
// When to use it: data read far more often than it changes, small enough to
// copy on every change (configuration, routing tables, feature flags, a
// read-mostly cache of up to thousands of entries). It replaces a
// SharedMutex that readers would otherwise take, and cures the
// reader-writer inversion: with a SharedMutex a slow writer stalls every
// reader that arrives after it; here readers keep reading the old snapshot
// while the writer builds. A Load that starts after Update returns sees the
// new value. It is the wrong tool when writes are frequent or the value is
// large (each write copies it: use a lockprof::ShardedMap), or when several
// CowPtrs must change together (each is published on its own).
//
// Writers. Update(fn) and Store() serialise on a lockprof::Mutex named after
// the CowPtr, and fn runs under that lock: writers never lose each other's
// updates and never build a value that is thrown away, and readers never
// wait for it. The price is that writers wait for each other, for as long as
// fn takes; that writer-writer contention is what lockprof profiles: it
// appears in /debug/pprof/mutex (and block) with lock="<name>", charged to
// the function that called Update. (Building off-lock and re-validating with
// a CAS would let writers run fn concurrently but redo it on every conflict;
// for a copy of a large value that is the worse trade.)
//
// Cost. Load: three atomic read-modify-writes on shared cache lines (a pin,
// the shared_ptr's reference count, an unpin) and no lock; readers contend
// only on those cache lines. Update: the writer lock, fn, one allocation for
// the new value and one for its holder. The old value is destroyed by
// whichever thread drops the last reference to it (a writer, outside the
// lock, when no reader still holds it).
//
// fork(): in the child, a value that a thread of the parent held when the
// process forked (a snapshot it had loaded, or was loading) is never
// destroyed: that thread's reference lives on in the child's memory with no
// thread to drop it, as with any std::shared_ptr. One value per such thread
// and fork; everything else works as before (fork_primitives_test).
//
// Thread-safety: Load, Update and Store may be called concurrently from any
// threads. fn must not call Update or Store on the same CowPtr (the writer
// lock is not recursive). Not copyable or movable.
#ifndef LOCKPROF_PRIMITIVES_COW_PTR_H_
#define LOCKPROF_PRIMITIVES_COW_PTR_H_

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "lockprof/primitives/internal/scoped_lock.h"
#include "lockprof/primitives/internal/snapshot_slot.h"
#include "lockprof/primitives/mutex.h"

namespace lockprof {

template <typename T>
class CowPtr {
 public:
  // Holds a value-initialised T.
  CowPtr() : CowPtr(nullptr) {}
  // `name` (a string literal or const array, see lock_name.h; may be
  // nullptr) labels the writers' lock: its samples carry lock="<name>".
  explicit CowPtr(LockName name, T initial = T())
      : writer_mu_(name),
        current_(std::make_shared<const T>(std::move(initial))),
        slot_(current_) {}
  CowPtr(const CowPtr&) = delete;
  CowPtr& operator=(const CowPtr&) = delete;

  // The current value, immutable. Never blocks.
  std::shared_ptr<const T> Load() const { return slot_.Load(); }

  // Replaces the value with fn(current value), where fn is called as
  // fn(const T&) -> T, exactly once, under the writer lock.
  template <typename F>
  void Update(F fn) ABSL_LOCKS_EXCLUDED(writer_mu_) {
    std::shared_ptr<const T> retired;  // Destroyed after the unlock.
    internal::ExclusiveLock<Mutex> lock(writer_mu_);
    Publish(std::make_shared<const T>(fn(static_cast<const T&>(*current_))), &retired);
  }

  // Replaces the value with `value`.
  void Store(T value) ABSL_LOCKS_EXCLUDED(writer_mu_) {
    std::shared_ptr<const T> retired;
    auto fresh = std::make_shared<const T>(std::move(value));
    internal::ExclusiveLock<Mutex> lock(writer_mu_);
    Publish(std::move(fresh), &retired);
  }

  const char* name() const { return writer_mu_.name(); }

 private:
  void Publish(std::shared_ptr<const T> fresh, std::shared_ptr<const T>* retired)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) {
    slot_.Store(fresh);
    *retired = std::exchange(current_, std::move(fresh));
  }

  Mutex writer_mu_;
  // The published value, as writers see it: what fn is given.
  std::shared_ptr<const T> current_ ABSL_GUARDED_BY(writer_mu_);
  internal::SnapshotSlot<T> slot_;
};

}  // namespace lockprof

#endif  // LOCKPROF_PRIMITIVES_COW_PTR_H_
