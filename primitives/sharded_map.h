// lockprof::ShardedMap<K, V>: a concurrent hash map split into shards, each
// behind its own profiled lockprof::SharedMutex.
//
// One lock around one map serialises every writer, and under a balanced
// read/write load every reader too. ShardedMap hashes each key (absl::Hash)
// to one of N shards; operations on different shards never touch the same
// lock or the same cache lines, so they proceed in parallel.
//
//   lockprof::ShardedMap<std::string, Session> sessions{"sessions", 64};
//   sessions.Set(id, session);
//   if (std::optional<Session> s = sessions.Get(id)) Use(*s);
//
// When to use it: a map that many threads both read and write, say roughly
// equal reads and writes over many distinct keys, where one reader/writer
// lock around the whole map serialises every writer and stalls readers
// behind them.
// For a read-mostly map that changes rarely, a lockprof::CowPtr over an
// immutable map gives lock-free reads instead; for a map touched by one
// thread at a time, a plain lockprof::Mutex is simpler. Shard count: 2-4 x
// the number of threads that use the map at once, rounded to a power of
// two; the default (16) suits modest concurrency. Too few shards leave each
// one contended, too many cost memory and make ForEach and size() slower.
//
// Profiling. Every shard's SharedMutex is named after the map and numbered:
// its contention appears in /debug/pprof/mutex and /debug/pprof/block with
// lock="<name>", shard=<index> and mode="read"/"write", charged to the
// function that called into the map. A hot shard (a hot key, or a weak hash)
// shows as one shard label carrying most of the delay
// (`go tool pprof -tags`); ShardOf(key) says which shard a key lives in.
//
// Semantics. Each operation is atomic with respect to its key's shard.
// Operations across shards are not: ForEach and size() visit the shards one
// at a time, so they see each shard at a different moment (never a torn
// entry, but not a snapshot of the whole map).
//
// Cost. Get: a hash, a read lock and unlock of one shard (one atomic add and
// one subtract uncontended) and a copy of V. Set and Erase: a hash, a write
// lock and unlock of one shard. ForEach and size(): every shard's read lock
// in turn. Memory: one cache-line-aligned SharedMutex and one
// absl::flat_hash_map per shard.
//
// Thread-safety: every method may be called concurrently from any threads.
// The function given to ForEach runs under a shard's read lock and must not
// call back into the same map (a read lock taken recursively can deadlock
// behind a waiting writer; a write lock always does). Not copyable or
// movable.
#ifndef LOCKPROF_PRIMITIVES_SHARDED_MAP_H_
#define LOCKPROF_PRIMITIVES_SHARDED_MAP_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "lockprof/primitives/internal/scoped_lock.h"
#include "lockprof/primitives/internal/shard_count.h"
#include "lockprof/primitives/shared_mutex.h"

namespace lockprof {

template <typename K, typename V, typename Hash = absl::Hash<K>, typename Eq = std::equal_to<K>>
class ShardedMap {
 public:
  static constexpr size_t kDefaultShards = 16;
  // Beyond this a map is only slower to walk (ForEach, size()): larger
  // requests are clamped to it.
  static constexpr size_t kMaxShards = internal::kMaxShards;

  // `shards` is rounded up to a power of two (at least 1, at most
  // kMaxShards). `name` (a string literal or const array: see lock_name.h)
  // labels every shard's lock. Not copied.
  explicit ShardedMap(LockName name = nullptr, size_t shards = kDefaultShards)
      : name_(name),
        mask_(internal::ShardCount(shards) - 1),
        shift_(mask_ == 0 ? 0 : 64 - __builtin_popcountll(mask_)) {
    shards_ = static_cast<Shard*>(
        ::operator new (sizeof(Shard) * shard_count(), std::align_val_t{alignof(Shard)}));
    for (size_t i = 0; i < shard_count(); ++i) new (&shards_[i]) Shard(name, int32_t(i));
  }
  ~ShardedMap() {
    for (size_t i = 0; i < shard_count(); ++i) shards_[i].~Shard();
    ::operator delete (shards_, std::align_val_t{alignof(Shard)});
  }
  ShardedMap(const ShardedMap&) = delete;
  ShardedMap& operator=(const ShardedMap&) = delete;

  // A copy of the value stored under `key`, if any.
  std::optional<V> Get(const K& key) const {
    const Shard& s = ShardFor(key);
    internal::SharedLock<SharedMutex> lock(s.mu);
    auto it = s.map.find(key);
    if (it == s.map.end()) return std::nullopt;
    return it->second;
  }

  bool Contains(const K& key) const {
    const Shard& s = ShardFor(key);
    internal::SharedLock<SharedMutex> lock(s.mu);
    return s.map.contains(key);
  }

  // Stores `value` under `key`, replacing any value there.
  void Set(const K& key, V value) {
    Shard& s = ShardFor(key);
    internal::ExclusiveLock<SharedMutex> lock(s.mu);
    s.map.insert_or_assign(key, std::move(value));
  }

  // Removes `key`; returns whether it was there.
  bool Erase(const K& key) {
    Shard& s = ShardFor(key);
    internal::ExclusiveLock<SharedMutex> lock(s.mu);
    return s.map.erase(key) != 0;
  }

  // Calls fn(const K&, const V&) for every entry, shard by shard, each under
  // that shard's read lock (see the file comment).
  template <typename F>
  void ForEach(F fn) const {
    for (size_t i = 0; i < shard_count(); ++i) {
      const Shard& s = shards_[i];
      internal::SharedLock<SharedMutex> lock(s.mu);
      for (const auto& [key, value] : s.map) fn(key, value);
    }
  }

  // The number of entries, summed shard by shard (not a snapshot).
  size_t size() const {
    size_t n = 0;
    for (size_t i = 0; i < shard_count(); ++i) {
      internal::SharedLock<SharedMutex> lock(shards_[i].mu);
      n += shards_[i].map.size();
    }
    return n;
  }

  // The shard `key` lives in: its locks' samples carry shard=<this>.
  size_t ShardOf(const K& key) const {
    // Fibonacci hashing: the top bits of the product, which depend on
    // every bit of the hash (a user's Hash may leave the low bits alike:
    // std::hash<uint64_t> of keys that differ only above bit 32 went to
    // one shard), and are independent of the bits the shard's own
    // flat_hash_map uses to place the key, so shards' tables stay evenly
    // probed. One shard: no shift of 64 bits.
    if (mask_ == 0) return 0;
    const uint64_t h = uint64_t(Hash{}(key));
    return size_t((h * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  size_t shard_count() const { return mask_ + 1; }
  const char* name() const { return name_.get(); }

 private:
  // One shard per cache line (at least): neighbouring shards' locks never
  // share a line, so uncontended shards do not slow each other down.
  struct alignas(64) Shard {
    Shard(LockName name, int32_t index) : mu(name, index) {}
    mutable SharedMutex mu;
    absl::flat_hash_map<K, V, Hash, Eq> map ABSL_GUARDED_BY(mu);
  };

  Shard& ShardFor(const K& key) { return shards_[ShardOf(key)]; }
  const Shard& ShardFor(const K& key) const { return shards_[ShardOf(key)]; }

  const LockName name_;
  const size_t mask_;
  const int shift_;  // 64 - log2(shard_count()), for ShardOf.
  Shard* shards_;
};

}  // namespace lockprof

#endif  // LOCKPROF_PRIMITIVES_SHARDED_MAP_H_
