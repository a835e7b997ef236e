// What a recorded event says about the lock, beyond its stack: these become
// pprof labels on the sample.
#ifndef LOCKPROF_AGENT_EVENT_TAGS_H_
#define LOCKPROF_AGENT_EVENT_TAGS_H_

#include <cstdint>

namespace lockprof::agent {

class LabelSet;

// Which side of a reader/writer lock an event belongs to. Becomes the label
// mode="read" / mode="write"; kNone adds no label (plain mutexes).
enum class LockMode : uint8_t { kNone = 0, kRead = 1, kWrite = 2 };

struct EventTags {
  // The lock's name (label "lock"); a string with static storage, or nullptr.
  const char* lock = nullptr;
  LockMode mode = LockMode::kNone;
  // Shard index of a lockprof::ShardedMap (numeric label "shard"); -1 = none.
  int32_t shard = -1;
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_EVENT_TAGS_H_
