// The shard count of a sharded primitive (ShardedCounter, ShardedMap):
// the request rounded up to a power of two, at most kMaxShards. More shards
// only make the walks over them (a counter's Load, a map's ForEach) slower,
// and an unbounded rounding overflows to 0 and loops for ever on a request
// such as size_t(-1).
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_SHARD_COUNT_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_SHARD_COUNT_H_

#include <cstddef>

namespace lockprof::internal {

inline constexpr size_t kMaxShards = size_t{1} << 16;

// At least 1.
constexpr size_t ShardCount(size_t requested) {
  size_t n = 1;
  while (n < requested && n < kMaxShards) n <<= 1;
  return n;
}

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_SHARD_COUNT_H_
