// What a recorded event says about the lock, beyond its stack: these become
// pprof labels on the sample.
#ifndef LOCKPROF_AGENT_RECORD_EVENT_TAGS_H_
#define LOCKPROF_AGENT_RECORD_EVENT_TAGS_H_

#include <cstddef>
#include <cstdint>

namespace lockprof::agent {

class LabelSet;

// Which side of a reader/writer lock an event belongs to. Becomes the label
// mode="read" / mode="write"; kNone adds no label (plain mutexes).
enum class LockMode : uint8_t { kNone = 0, kRead = 1, kWrite = 2 };

// The mode label's value: "read", "write", or nullptr for kNone (no label).
constexpr const char* LockModeName(LockMode mode) {
  return mode == LockMode::kRead ? "read" : mode == LockMode::kWrite ? "write" : nullptr;
}

// What a block event waited for: a lock (an acquisition) or a condition
// (CondVar::wait). Only lock acquisitions feed the per-lock wait metrics and
// the slow-acquire hook; both show in the block profile, as in Go's.
enum class WaitKind : uint8_t { kAcquire = 0, kCondition = 1 };

// The bytes a lock's name is kept in by the profiles' and metrics' tables,
// its terminator included: longer names are cut (between characters).
inline constexpr size_t kMaxLockName = 48;

struct EventTags {
  // The lock's name (label "lock"), or nullptr: the lock's own, or a copy
  // of it that an unlock took before its release (see lock_id).
  const char* lock = nullptr;
  LockMode mode = LockMode::kNone;
  // Shard index of a lockprof::ShardedMap (numeric label "shard"); -1 = none.
  int32_t shard = -1;
  WaitKind wait = WaitKind::kAcquire;
  // A reader/writer lock that lets a reader in while other readers hold it,
  // even with a writer waiting (glibc's rwlocks but the writer-preferring
  // kind, std::shared_mutex among them): a read acquisition of it waits for
  // a writer only. Lock-order checking then sees no cycle through two read
  // holds of it (agent/deadlock/lock_graph.h).
  bool readers_first = false;
  // What the profile tables tell names apart by, with their bytes: the
  // address of the lock's own name, compared, never read. nullptr: `lock`
  // itself. Set where `lock` is a copy (primitives/internal/name_copy.h),
  // whose address differs from thread to thread.
  const char* lock_id = nullptr;
};

// The address the profile tables key `tags`' name by.
inline const void* LockNameId(const EventTags& tags) {
  return tags.lock_id != nullptr ? tags.lock_id : tags.lock;
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_EVENT_TAGS_H_
