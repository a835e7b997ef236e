// A lock's name, copied before the release that ends an unlock's accesses
// to the lock.
//
// A thread may destroy a lock as soon as it can lock and unlock it, while
// the thread whose release let it in is still inside unlock(); a name that
// is a const array member of the object that holds the lock (which
// LockName accepts) dies with it. What an unlock records after its release
// (the contention its section caused, its hold, the block events parked for
// it) therefore reads this copy, never the name itself. Only what the
// tables keep is copied (KeepName: kMaxLockName bytes at most, cut between
// characters), so the records are those the name itself would make.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_NAME_COPY_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_NAME_COPY_H_

#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/record/event_tags.h"

namespace lockprof::internal {

class NameCopy {
 public:
  // `name`: the lock's, or nullptr (an unnamed lock).
  explicit NameCopy(const char* name) {
    if (name != nullptr) {
      agent::KeepName(name, bytes_, sizeof bytes_);
      name_ = bytes_;
    }
  }
  NameCopy(const NameCopy&) = delete;
  NameCopy& operator=(const NameCopy&) = delete;

  // The copy (nullptr for an unnamed lock), valid while this object lives.
  const char* get() const { return name_; }

 private:
  const char* name_ = nullptr;
  char bytes_[agent::kMaxLockName];
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_NAME_COPY_H_
