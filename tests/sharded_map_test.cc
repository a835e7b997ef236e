// lockprof::ShardedMap: behaves as a map (checked against reference maps,
// serially and with concurrent writers), spreads keys over its shards, and
// labels its shards' contention with the shard index, as go tool pprof shows.
#include "lockprof/primitives/sharded_map.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::FetchProfile;
using lockprof::testing::FetchProfileToFile;
using lockprof::testing::GoPprof;
using lockprof::testing::NumLabel;
using lockprof::testing::SamplesForLock;
using lockprof::testing::ScopedRates;
using lockprof::testing::StackFunctions;

template <typename Map>
std::map<int64_t, std::string> Contents(const Map& m) {
  std::map<int64_t, std::string> out;
  m.ForEach([&](const int64_t& k, const std::string& v) { EXPECT_TRUE(out.emplace(k, v).second); });
  return out;
}

TEST(ShardedMapTest, ShardCounts) {
  EXPECT_EQ((lockprof::ShardedMap<int, int>().shard_count()), 16u);
  EXPECT_EQ((lockprof::ShardedMap<int, int>("test.five", 5).shard_count()), 8u);
  EXPECT_EQ((lockprof::ShardedMap<int, int>(nullptr, 0).shard_count()), 1u);
  lockprof::ShardedMap<int, int> one(nullptr, 1);
  one.Set(1, 2);
  EXPECT_EQ(one.Get(1), 2);
  EXPECT_EQ(one.ShardOf(12345), 0u);
  // A count from a flag that defaulted to -1: clamped, not a hang (the
  // rounding overflowed to 0 and looped for ever).
  EXPECT_EQ((lockprof::ShardedMap<int, int>(nullptr, size_t(-1)).shard_count()),
            (lockprof::ShardedMap<int, int>::kMaxShards));
}

TEST(ShardedMapTest, MatchesAReferenceMap) {
  lockprof::ShardedMap<int64_t, std::string> map{"test.reference", 8};
  std::map<int64_t, std::string> reference;
  std::mt19937_64 rng(42);
  for (int i = 0; i < 50000; ++i) {
    const int64_t key = int64_t(rng() % 2000);
    switch (rng() % 4) {
      case 0:
      case 1: {
        std::string value = std::to_string(rng());
        map.Set(key, value);
        reference[key] = value;
        break;
      }
      case 2:
        EXPECT_EQ(map.Erase(key), reference.erase(key) == 1);
        break;
      default: {
        auto it = reference.find(key);
        std::optional<std::string> got = map.Get(key);
        ASSERT_EQ(got.has_value(), it != reference.end());
        if (got) {
          EXPECT_EQ(*got, it->second);
        }
        EXPECT_EQ(map.Contains(key), got.has_value());
      }
    }
  }
  EXPECT_EQ(map.size(), reference.size());
  EXPECT_EQ(Contents(map), reference);
}

// Each writer owns a key range (with its own reference map) and all of them
// also overwrite shared keys with values only they would write.
TEST(ShardedMapTest, ConcurrentWritersMatchTheirReferences) {
  lockprof::ShardedMap<int64_t, std::string> map{"test.concurrent", 4};
  constexpr int kThreads = 4;
  std::vector<std::map<int64_t, std::string>> references(kThreads);
  std::atomic<int> bad_shared{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng{uint64_t(t)};
      auto& ref = references[size_t(t)];
      for (int i = 0; i < 20000; ++i) {
        const int64_t key = int64_t(t) * 1000000 + int64_t(rng() % 500);
        if (rng() % 3 == 0) {
          map.Erase(key);
          ref.erase(key);
        } else {
          std::string value = std::to_string(i);
          map.Set(key, value);
          ref[key] = value;
        }
        const int64_t shared = -int64_t(rng() % 16) - 1;
        map.Set(shared, "writer" + std::to_string(t));
        std::optional<std::string> seen = map.Get(shared);
        if (!seen || seen->rfind("writer", 0) != 0) bad_shared.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad_shared.load(), 0);
  std::map<int64_t, std::string> expected;
  for (const auto& ref : references) expected.insert(ref.begin(), ref.end());
  std::map<int64_t, std::string> got = Contents(map);
  for (int64_t k = -16; k <= -1; ++k) got.erase(k);
  EXPECT_EQ(got, expected);
}

TEST(ShardedMapTest, KeysSpreadEvenlyOverShards) {
  lockprof::ShardedMap<int64_t, int> map;
  std::vector<int> per_shard(map.shard_count(), 0);
  for (int64_t k = 0; k < 16000; ++k) ++per_shard[map.ShardOf(k)];
  for (size_t s = 0; s < per_shard.size(); ++s) {
    EXPECT_GT(per_shard[s], 800) << "shard " << s;
    EXPECT_LT(per_shard[s], 1200) << "shard " << s;
  }
}

// A hash that leaves the low bits alike (std::hash<uint64_t> is the
// identity): keys that differ only in their high bits still spread. Before,
// the shard came from bits 32-35 of the product only, and every key here
// went to one shard.
TEST(ShardedMapTest, KeysThatDifferOnlyInHighBitsSpread) {
  for (const int shift : {36, 40, 56}) {
    lockprof::ShardedMap<uint64_t, int, std::hash<uint64_t>> map;
    std::vector<int> per_shard(map.shard_count(), 0);
    for (uint64_t k = 0; k < 256; ++k) ++per_shard[map.ShardOf(k << shift)];
    const int used =
        int(std::count_if(per_shard.begin(), per_shard.end(), [](int n) { return n > 0; }));
    EXPECT_EQ(used, int(map.shard_count())) << "keys i << " << shift;
  }
}

// A scan holds a shard's read lock while a writer waits for that shard:
// the scan's release is charged the writer's wait in the mutex profile,
// the writer's wait is in the block profile, both labelled with the map's
// name and the shard index.

ABSL_ATTRIBUTE_NOINLINE void ScanSlowly(const lockprof::ShardedMap<int64_t, int>& map,
                                        std::atomic<bool>& in_scan) {
  map.ForEach([&](const int64_t&, const int&) {
    in_scan.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  });
}

ABSL_ATTRIBUTE_NOINLINE void WriteBlockedKey(lockprof::ShardedMap<int64_t, int>& map, int64_t key) {
  map.Set(key, 2);
}

// Sum of value[1] over samples labelled lock=`name` and shard=`shard`
// whose leaf is `leaf`.
int64_t ShardDelay(const char* name, const char* profile_name, const std::string& leaf,
                   int32_t shard) {
  auto p = FetchProfile(profile_name);
  int64_t sum = 0;
  for (const auto* s : SamplesForLock(p, name)) {
    auto names = StackFunctions(p, *s);
    if (NumLabel(p, *s, "shard") == shard && !names.empty() &&
        names[0].find(leaf) != std::string::npos) {
      sum += s->value(1);
    }
  }
  return sum;
}

// Contention on shard `shard` of a map named `name`, as the profiles and go
// tool pprof show it.
template <size_t N>
void ExpectShardContentionLabelled(const char (&name)[N], int32_t shard) {
  ScopedRates rates(1, 1, ScopedRates::kKeep);
  lockprof::ShardedMap<int64_t, int> map{name, 16};
  int64_t key = 0;
  while (map.ShardOf(key) != size_t(shard)) ++key;
  map.Set(key, 1);  // The only entry: the scan's one call runs in `shard`.

  // The writer must be waiting before the scan's sleep ends; on a loaded
  // machine it may not be, so repeat (bounded) until the charge is seen.
  for (int round = 0; round < 20 && ShardDelay(name, "mutex", "ScanSlowly", shard) == 0; ++round) {
    std::atomic<bool> in_scan{false};
    std::thread scanner([&] { ScanSlowly(map, in_scan); });
    while (!in_scan.load()) std::this_thread::yield();
    WriteBlockedKey(map, key);
    scanner.join();
  }
  EXPECT_GT(ShardDelay(name, "mutex", "ScanSlowly", shard), 0);
  EXPECT_GT(ShardDelay(name, "block", "WriteBlockedKey", shard), 0);

  // go tool pprof sees the labels: -tags lists the shard for this map.
  const std::string path = FetchProfileToFile("mutex");
  int status;
  std::string tags = GoPprof(std::string("-tags -tagfocus=lock=") + name + " " + path, &status);
  ASSERT_EQ(status, 0) << tags;
  EXPECT_NE(tags.find("shard:"), std::string::npos) << tags;
  EXPECT_NE(tags.find(": " + std::to_string(shard) + "\n"), std::string::npos) << tags;
  EXPECT_NE(tags.find("write"), std::string::npos) << tags;
  std::string top = GoPprof(std::string("-top -tagfocus=lock=") + name + " " + path, &status);
  EXPECT_NE(top.find("ScanSlowly"), std::string::npos) << top;
  // Selecting the shard by its number (a numeric label: a range).
  top = GoPprof("-top -tagfocus=shard=" + std::to_string(shard) + " " + path, &status);
  EXPECT_NE(top.find("ScanSlowly"), std::string::npos) << top;
}

TEST(ShardedMapTest, ShardContentionIsLabelledWithTheShard) {
  ExpectShardContentionLabelled("test.shards", 5);
}

// pprof's reader drops a numeric label that is 0 and has no unit: shard 0's
// samples kept their index only because the label names one.
TEST(ShardedMapTest, ShardZeroKeepsItsLabel) { ExpectShardContentionLabelled("test.shard0", 0); }

}  // namespace
