// A lock's name, copied before the release that ends an unlock's accesses
// to the lock.
//
// A thread may destroy a lock as soon as it can lock and unlock it, while
// the thread whose release let it in is still inside unlock(); a name that
// is a const array member of the object that holds the lock (which
// LockName accepts) dies with it. What an unlock records after its release
// (the contention its section caused, its hold, the block events parked for
// it, the slow-acquire hook) therefore reads this copy, never the name
// itself. The tags it makes keep the name's own address as its identity
// (EventTags::lock_id): the profile tables tell names apart by address, and
// the copy's differs from thread to thread.
//
// kNameCopyBytes - 1 bytes at most are copied, cut between characters: the
// profile and metrics tables keep the first kMaxLockName - 1 of them (so
// their records are those the name itself would make), and the slow-acquire
// hook gets them all.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_NAME_COPY_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_NAME_COPY_H_

#include <cstddef>
#include <cstdint>

#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/record/event_tags.h"

namespace lockprof::internal {

inline constexpr size_t kNameCopyBytes = 128;
static_assert(kNameCopyBytes >= agent::kMaxLockName, "the tables' part of the name is copied");

class NameCopy {
 public:
  // `name`: the lock's, or nullptr (an unnamed lock).
  explicit NameCopy(const char* name) : id_(name) {
    if (name != nullptr) agent::KeepName(name, bytes_, sizeof bytes_);
  }
  NameCopy(const NameCopy&) = delete;
  NameCopy& operator=(const NameCopy&) = delete;

  // Tags naming the lock by the copy (valid while this object lives), keyed
  // by the name's own address.
  agent::EventTags Tags(agent::LockMode mode = agent::LockMode::kNone, int32_t shard = -1) const {
    agent::EventTags tags{id_ != nullptr ? bytes_ : nullptr, mode, shard};
    tags.lock_id = id_;
    return tags;
  }

 private:
  const char* const id_;
  char bytes_[kNameCopyBytes];
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_NAME_COPY_H_
