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
  for (int e = 0; e < 8; ++e) index.Insert(At(0x1000), At(0x2000 + 64 * e), e, 1u << 0);
  for (int e = 0; e < 8; ++e) {
    EXPECT_TRUE(index.Contains(At(0x1000), At(0x2000 + 64 * e), 0)) << e;
    EXPECT_EQ(index.Find(At(0x1000), At(0x2000 + 64 * e), any), e);
  }
  // Direction matters, and so does each address.
  EXPECT_FALSE(index.Contains(At(0x2000), At(0x1000), 0));
  EXPECT_FALSE(index.Contains(At(0x1000), At(0x1000), 0));
  EXPECT_EQ(index.Find(At(0x2000), At(0x1000), any), -1);
  // Find() checks the edge the slot names.
  EXPECT_EQ(index.Find(At(0x1000), At(0x2000), [](int e) { return e != 0; }), -1);

  index.Erase(At(0x1000), At(0x2000 + 64 * 3), 3);
  EXPECT_FALSE(index.Contains(At(0x1000), At(0x2000 + 64 * 3), 0));
  // The others, probed past the tombstone, are still there.
  for (int e = 0; e < 8; ++e) {
    EXPECT_EQ(index.Contains(At(0x1000), At(0x2000 + 64 * e), 0), e != 3) << e;
  }
}

// An edge's kinds (held shared, waited for shared) are looked up apart: a
// thread that takes an edge in a kind the graph has not seen hands it on.
TEST(EdgeIndexTest, KnowsTheKindsEachEdgeWasTakenIn) {
  EdgeIndex<8>& index = g_small;
  index.Clear();
  const auto any = [](int) { return true; };
  index.Insert(At(0x1000), At(0x2000), 5, 1u << 3);
  for (int kind = 0; kind < 4; ++kind) {
    EXPECT_EQ(index.Contains(At(0x1000), At(0x2000), kind), kind == 3) << kind;
  }
  index.AddKind(At(0x1000), At(0x2000), any, 0);
  for (int kind = 0; kind < 4; ++kind) {
    EXPECT_EQ(index.Contains(At(0x1000), At(0x2000), kind), kind == 0 || kind == 3) << kind;
  }
  EXPECT_EQ(index.Find(At(0x1000), At(0x2000), any), 5);
  index.Erase(At(0x1000), At(0x2000), 5);
  for (int kind = 0; kind < 4; ++kind) {
    EXPECT_FALSE(index.Contains(At(0x1000), At(0x2000), kind)) << kind;
  }
}

TEST(EdgeIndexTest, TombstonesCrowdItUntilARebuild) {
  EdgeIndex<8>& index = g_small;
  index.Clear();
  // Two edges that stay, then edges in and out again: a new key takes the
  // first tombstone on its probe, but where its probe starts at an empty
  // slot it uses that, and tombstones pile up.
  index.Insert(At(0x1000), At(0x2000), 0, 1);
  index.Insert(At(0x2000), At(0x1000), 1, 1);
  int churned = 0;
  while (!index.Crowded() && churned < 10000) {
    const void* to = At(0x9000 + 64 * churned++);
    index.Insert(At(0x1000), to, 2, 1);
    ASSERT_TRUE(index.Contains(At(0x1000), to, 0));
    index.Erase(At(0x1000), to, 2);
    ASSERT_FALSE(index.Contains(At(0x1000), to, 0));
  }
  ASSERT_TRUE(index.Crowded()) << churned;
  // Probed past the tombstones, the two are still there.
  EXPECT_TRUE(index.Contains(At(0x1000), At(0x2000), 0));
  EXPECT_TRUE(index.Contains(At(0x2000), At(0x1000), 0));
  // The rebuild the graph does: clear, then insert the live edges.
  index.Clear();
  index.Insert(At(0x1000), At(0x2000), 0, 1);
  index.Insert(At(0x2000), At(0x1000), 1, 1);
  EXPECT_FALSE(index.Crowded());
  EXPECT_TRUE(index.Contains(At(0x1000), At(0x2000), 0));
  EXPECT_TRUE(index.Contains(At(0x2000), At(0x1000), 0));
  EXPECT_FALSE(index.Contains(At(0x1000), At(0x9000), 0));
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
  for (const Mutex& e : entries) ASSERT_TRUE(LockOrderEdgeKnown(&registry, &e, 0));
  EXPECT_FALSE(LockOrderEdgeKnown(&entries[0], &registry, 0));
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
      ASSERT_TRUE(LockOrderEdgeKnown(a, b, 0)) << round;
      b->~Mutex();
      a->~Mutex();
      ASSERT_FALSE(LockOrderEdgeKnown(a, b, 0)) << round;
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

// The graph's search with read holds (lock_graph.h), edge by edge: locks
// A and B stand for two readers-first rwlocks; kind bit 0 says the source
// was held shared, bit 1 that the target was waited for shared.
class LockOrderKindsTest : public ::testing::Test {
 protected:
  // Adds a -> b taken in `kind`; returns the cycles it closed.
  int Take(const void* a, const void* b, int kind) {
    const agent::HeldLock held{a, "a", kind};
    agent::StackTrace stack;
    stack.pcs[0] = 0x1234;
    stack.depth = 1;
    agent::Cycle out[1];
    int first_kept = 0, kept = 0;
    return agent::AddLockOrderEdges(&held, 1, b, "b", stack, 1, out, &first_kept, &kept);
  }
  void TearDown() override {
    for (const char& lock : locks_) agent::ForgetLockOrderNode(&lock);
  }
  const char* A() const { return Lock(0); }
  const char* B() const { return Lock(1); }
  const char* Lock(int i) const { return &locks_[4 * i]; }

 private:
  alignas(8) char locks_[4 * 8] = {};
};

constexpr int kExclusive = 0, kHeldShared = 1, kWaitedShared = 2, kShared = 3;

TEST_F(LockOrderKindsTest, ReadersOnBothSidesMakeNoCycle) {
  EXPECT_EQ(Take(A(), B(), kShared), 0);
  EXPECT_EQ(Take(B(), A(), kShared), 0);
}

TEST_F(LockOrderKindsTest, ReadHoldsWithWritesWaitedForMakeACycle) {
  EXPECT_EQ(Take(A(), B(), kHeldShared), 0);
  EXPECT_EQ(Take(B(), A(), kHeldShared), 1);
}

TEST_F(LockOrderKindsTest, WriteHoldsWithReadsWaitedForMakeACycle) {
  EXPECT_EQ(Take(A(), B(), kWaitedShared), 0);
  EXPECT_EQ(Take(B(), A(), kWaitedShared), 1);
}

// A waits to read B, which the other thread holds for reading: no wait.
TEST_F(LockOrderKindsTest, AReadWaitedForOnAReadHoldBreaksTheCycle) {
  EXPECT_EQ(Take(A(), B(), kShared), 0);
  EXPECT_EQ(Take(B(), A(), kHeldShared), 0);
}

// The edge B -> A gains a kind that holds B and waits for A exclusively:
// the cycle becomes possible then, and is found once.
TEST_F(LockOrderKindsTest, AKindThatMakesTheCyclePossibleIsReportedOnce) {
  EXPECT_EQ(Take(A(), B(), kShared), 0);
  EXPECT_EQ(Take(B(), A(), kShared), 0);
  EXPECT_EQ(Take(B(), A(), kExclusive), 1);
  EXPECT_EQ(Take(B(), A(), kExclusive), 0);
  EXPECT_EQ(Take(B(), A(), kWaitedShared), 0);
}

// A cycle possible with an edge's first kind was reported then; another
// kind of that edge reports nothing more.
TEST_F(LockOrderKindsTest, AKindAddedToACycleAlreadyFoundReportsNothing) {
  EXPECT_EQ(Take(A(), B(), kHeldShared), 0);
  EXPECT_EQ(Take(B(), A(), kHeldShared), 1);
  EXPECT_EQ(Take(B(), A(), kExclusive), 0);
}

// An edge that gains an exclusive wait closes a cycle of its own, though
// another cycle went through it before: A, Y and Z are mutexes, B a
// readers-first rwlock. A -> B (reading B) -> Y -> A is a cycle (B -> Y
// writes B) and reported; A -> B -> Z -> A is not while Z's thread only
// reads B; then a thread holding A writes B: that one is.
TEST_F(LockOrderKindsTest, ANewExclusiveWaitIsSearchedForItsOwnCycles) {
  const char *a = Lock(0), *b = Lock(1), *y = Lock(2), *z = Lock(3);
  EXPECT_EQ(Take(a, b, kWaitedShared), 0);
  EXPECT_EQ(Take(b, y, kExclusive), 0);
  EXPECT_EQ(Take(y, a, kExclusive), 1);
  EXPECT_EQ(Take(b, z, kHeldShared), 0);
  EXPECT_EQ(Take(z, a, kExclusive), 0);
  EXPECT_EQ(Take(a, b, kExclusive), 1);
}

// The same for an exclusive hold: P is a readers-first rwlock, Q, R and S
// mutexes. P -> Q (P read) -> R -> P is a cycle (R's thread waits to write
// P) and reported; P -> Q -> S -> P is not while S's thread only waits to
// read P; then a thread writing P takes Q: that cycle is.
TEST_F(LockOrderKindsTest, ANewExclusiveHoldIsSearchedForItsOwnCycles) {
  const char *p = Lock(0), *q = Lock(1), *r = Lock(2), *s = Lock(3);
  EXPECT_EQ(Take(p, q, kHeldShared), 0);
  EXPECT_EQ(Take(q, r, kExclusive), 0);
  EXPECT_EQ(Take(r, p, kExclusive), 1);
  EXPECT_EQ(Take(q, s, kExclusive), 0);
  EXPECT_EQ(Take(s, p, kWaitedShared), 0);
  EXPECT_EQ(Take(p, q, kExclusive), 1);
}

// A cycle behind a loop through a readers-first lock is reported: T -> X
// reads X, X -> Y -> X is a cycle of its own (reported), X -> F holds X
// shared, T -> Y; then F -> T closes F -> T -> Y -> X -> F (T's thread
// waits for Y, whose holder waits to write X, whose reader waits for F).
// The search meets X first by T's shared wait, from which X -> F does not
// chain, then by way of Y; what it reports is the walk F -> T -> X -> Y ->
// X -> F (lock_graph.h), which a search that refused to pass X twice
// missed, and the cycle with it.
TEST_F(LockOrderKindsTest, ACycleBehindALoopThroughAReadLockIsReported) {
  const char *t = Lock(0), *x = Lock(1), *y = Lock(2), *f = Lock(3);
  EXPECT_EQ(Take(t, x, kWaitedShared), 0);
  EXPECT_EQ(Take(x, y, kExclusive), 0);
  EXPECT_EQ(Take(y, x, kExclusive), 1);
  EXPECT_EQ(Take(x, f, kHeldShared), 0);
  EXPECT_EQ(Take(t, y, kExclusive), 0);
  EXPECT_EQ(Take(f, t, kExclusive), 1);
}

// What the search gives up for that (lock_graph.h): a walk that passes a
// lock twice counts, though two of its threads would hold the lock at
// once, one exclusively. T -> X reads X, X -> Y -> X is a cycle (reported
// first), X -> F holds X shared; F -> T closes only the walk
// F -> T -> X -> Y -> X -> F, reported, through X, which is on the cycle
// reported before.
TEST_F(LockOrderKindsTest, AWalkThatPassesALockTwiceCountsOnlyAfterItsLoop) {
  const char *t = Lock(0), *x = Lock(1), *y = Lock(2), *f = Lock(3), *g = Lock(4);
  EXPECT_EQ(Take(t, x, kWaitedShared), 0);
  EXPECT_EQ(Take(x, f, kHeldShared), 0);
  EXPECT_EQ(Take(f, t, kExclusive), 0);  // No loop yet: no cycle.
  EXPECT_EQ(Take(x, y, kExclusive), 0);
  EXPECT_EQ(Take(y, x, kExclusive), 1);  // The loop: a cycle, reported.
  EXPECT_EQ(Take(x, g, kHeldShared), 0);
  EXPECT_EQ(Take(g, t, kExclusive), 1);  // G -> T -> X -> Y -> X -> G.
}

// A thread that writes B and waits to read A, which the other thread
// reads: it gets in.
TEST_F(LockOrderKindsTest, AReadWaitedForOnTheOtherThreadsReadHoldBreaksTheCycle) {
  EXPECT_EQ(Take(A(), B(), kHeldShared), 0);
  EXPECT_EQ(Take(B(), A(), kWaitedShared), 0);
}

}  // namespace
}  // namespace lockprof
