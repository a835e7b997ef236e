// The lock-order graph's index of its edges (agent/deadlock/edge_index.h):
// what a thread looks up, without the graph's mutex, before it captures a
// stack for an edge; and that detection stays exact while locks come and
// go by the thousand (tombstones, rebuilds) and while one lock has more
// edges out of it than a thread's cache keeps.
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lock_order_fixture.h"
#include "lockprof/agent/deadlock/edge_index.h"
#include "lockprof/agent/deadlock/lock_graph.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/primitives/mutex.h"

namespace lockprof {
namespace {

using agent::EdgeIndex;
using agent::LockOrderEdgeKnown;

const void* At(uintptr_t address) { return reinterpret_cast<const void*>(address); }

// Eight edges at most: sixteen slots, crowded at twelve used.
EdgeIndex<8> g_small;

TEST(EdgeIndexTest, FindsWhatWasInsertedUntilErased) {
  EdgeIndex<8>& index = g_small;
  index.Clear();
  const auto any = [](int) { return true; };
  for (int e = 0; e < 8; ++e) index.Insert(At(0x1000), At(0x2000 + 64 * e), e);
  for (int e = 0; e < 8; ++e) {
    EXPECT_TRUE(index.Contains(At(0x1000), At(0x2000 + 64 * e))) << e;
    EXPECT_EQ(index.Find(At(0x1000), At(0x2000 + 64 * e), any), e);
  }
  // Direction matters, and so does each address.
  EXPECT_FALSE(index.Contains(At(0x2000), At(0x1000)));
  EXPECT_FALSE(index.Contains(At(0x1000), At(0x1000)));
  EXPECT_EQ(index.Find(At(0x2000), At(0x1000), any), -1);
  // Find() checks the edge the slot names.
  EXPECT_EQ(index.Find(At(0x1000), At(0x2000), [](int e) { return e != 0; }), -1);

  index.Erase(At(0x1000), At(0x2000 + 64 * 3), 3);
  EXPECT_FALSE(index.Contains(At(0x1000), At(0x2000 + 64 * 3)));
  // The others, probed past the tombstone, are still there.
  for (int e = 0; e < 8; ++e) {
    EXPECT_EQ(index.Contains(At(0x1000), At(0x2000 + 64 * e)), e != 3) << e;
  }
}

TEST(EdgeIndexTest, TombstonesCrowdItUntilARebuild) {
  EdgeIndex<8>& index = g_small;
  index.Clear();
  // Two edges that stay, then edges in and out again: a new key takes the
  // first tombstone on its probe, but where its probe starts at an empty
  // slot it uses that, and tombstones pile up.
  index.Insert(At(0x1000), At(0x2000), 0);
  index.Insert(At(0x2000), At(0x1000), 1);
  int churned = 0;
  while (!index.Crowded() && churned < 10000) {
    const void* to = At(0x9000 + 64 * churned++);
    index.Insert(At(0x1000), to, 2);
    ASSERT_TRUE(index.Contains(At(0x1000), to));
    index.Erase(At(0x1000), to, 2);
    ASSERT_FALSE(index.Contains(At(0x1000), to));
  }
  ASSERT_TRUE(index.Crowded()) << churned;
  // Probed past the tombstones, the two are still there.
  EXPECT_TRUE(index.Contains(At(0x1000), At(0x2000)));
  EXPECT_TRUE(index.Contains(At(0x2000), At(0x1000)));
  // The rebuild the graph does: clear, then insert the live edges.
  index.Clear();
  index.Insert(At(0x1000), At(0x2000), 0);
  index.Insert(At(0x2000), At(0x1000), 1);
  EXPECT_FALSE(index.Crowded());
  EXPECT_TRUE(index.Contains(At(0x1000), At(0x2000)));
  EXPECT_TRUE(index.Contains(At(0x2000), At(0x1000)));
  EXPECT_FALSE(index.Contains(At(0x1000), At(0x9000)));
}

using LockOrderIndexTest = testing::LockOrderFixture;

// A registry lock and 1,000 entry locks taken under it, by one thread and
// then by another: the graph has every edge once the first is done, and
// the second thread's acquisitions (each a miss of its own cache) add none.
// An inversion through an entry the first thread's cache evicted long ago
// is still found.
TEST_F(LockOrderIndexTest, EveryEdgeOfAWideLockIsKnownToEveryThread) {
  static Mutex registry("registry");
  static Mutex entries[1000];
  const uint64_t before = LockOrderInversions();
  auto take_all = [] {
    for (Mutex& e : entries) {
      MutexLock r(&registry);
      MutexLock l(&e);
    }
  };
  std::thread(take_all).join();
  for (const Mutex& e : entries) ASSERT_TRUE(LockOrderEdgeKnown(&registry, &e));
  EXPECT_FALSE(LockOrderEdgeKnown(&entries[0], &registry));
  std::thread(take_all).join();
  EXPECT_EQ(LockOrderInversions(), before);
  std::thread([] {
    MutexLock l(&entries[7]);
    MutexLock r(&registry);
  }).join();
  EXPECT_EQ(LockOrderInversions(), before + 1);
}

// 30,000 pairs of locks that live for one nested acquisition each, at
// addresses that keep changing: each leaves its edge's tombstone, and they
// crowd the index until the graph rebuilds it. A lock that dies takes its
// edges out of the index (a new lock at its address has none); an
// inversion afterwards is found.
TEST_F(LockOrderIndexTest, LocksThatComeAndGoLeaveNoEdgesBehind) {
  constexpr int kSlots = 4096;
  struct alignas(Mutex) Slot {
    unsigned char bytes[sizeof(Mutex)];
  };
  auto storage = std::make_unique<Slot[]>(kSlots);
  auto slot = [&](int i) { return reinterpret_cast<Mutex*>(storage[i].bytes); };
  const uint64_t before = LockOrderInversions();
  std::thread([&] {
    for (int round = 0; round < 30000; ++round) {
      const int i = round % kSlots;
      const int j = (i + 1 + round / kSlots * 37 + round * 7) % kSlots;
      if (i == j) continue;
      Mutex* a = new (slot(i)) Mutex("churn.a");
      Mutex* b = new (slot(j)) Mutex("churn.b");
      {
        MutexLock la(a);
        MutexLock lb(b);
      }
      ASSERT_TRUE(LockOrderEdgeKnown(a, b)) << round;
      b->~Mutex();
      a->~Mutex();
      ASSERT_FALSE(LockOrderEdgeKnown(a, b)) << round;
    }
  }).join();
  EXPECT_EQ(LockOrderInversions(), before);
  // Two locks at addresses the churn used: no edge survived their
  // predecessors, and their own orders are found.
  Mutex* a = new (slot(0)) Mutex("after.a");
  Mutex* b = new (slot(1)) Mutex("after.b");
  std::thread([&] {
    MutexLock lb(b);
    MutexLock la(a);
  }).join();
  EXPECT_EQ(LockOrderInversions(), before);
  std::thread([&] {
    MutexLock la(a);
    MutexLock lb(b);
  }).join();
  EXPECT_EQ(LockOrderInversions(), before + 1);
  b->~Mutex();
  a->~Mutex();
}

}  // namespace
}  // namespace lockprof
