// Lock-order checking (agent/lock_order.h): inversions found when the second
// order is first taken, without a deadlock; what is and is not an edge;
// locks that die; the three report forms.
//
// The graph, its reports and their limit (kMaxLockOrderReports kept, with
// hooks) are the process's: ctest runs each test in a process of its own.
// Run as one process, the binary passes in its own order (the test that
// fills the kept reports does so in a forked child); shuffled, a test that
// runs after the self-wait test has filled them finds no hook called.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lifecycle_util.h"
#include "lock_order_fixture.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/agent/record/thread_locks.h"
#include "lockprof/primitives/mutex.h"
#include "lockprof/primitives/shared_mutex.h"
#include "route_get.h"
#include "test_util.h"

namespace lockprof {
namespace {

using LockOrderTest = testing::LockOrderFixture;

Mutex g_bank_a("bank.a");
Mutex g_bank_b("bank.b");

ABSL_ATTRIBUTE_NOINLINE void TransferAThenB() {
  MutexLock a(&g_bank_a);
  MutexLock b(&g_bank_b);
}

ABSL_ATTRIBUTE_NOINLINE void TransferBThenA() {
  MutexLock b(&g_bank_b);
  MutexLock a(&g_bank_a);
}

std::string Get(const std::string& path, const std::string& query = "") {
  return testing::RouteGet(path, query);
}

TEST_F(LockOrderTest, InversionWithoutDeadlockIsReportedOnceInEveryForm) {
  OnThread(TransferAThenB);
  EXPECT_EQ(NewInversions(), 0u);
  // The other order, later, on another thread: never a deadlock, since the
  // two never overlap, but a potential one.
  OnThread(TransferBThenA);
  EXPECT_EQ(NewInversions(), 1u);
  // Taken again, in both orders: nothing new.
  OnThread(TransferAThenB);
  OnThread(TransferBThenA);
  EXPECT_EQ(NewInversions(), 1u);

  EXPECT_EQ(hook_calls.load(), 1);
  EXPECT_EQ(hook_edges, (std::vector<std::string>{"bank.b->bank.a", "bank.a->bank.b"}));

  const std::string text = LockOrderReport();
  EXPECT_NE(text.find("cycle of 2 locks: \"bank.b\" -> \"bank.a\" -> \"bank.b\""), text.npos)
      << text;
  EXPECT_NE(text.find("\"bank.a\" acquired while holding \"bank.b\""), text.npos) << text;
  EXPECT_NE(text.find("\"bank.b\" acquired while holding \"bank.a\""), text.npos) << text;
  // Both stacks, each at the function that took that order.
  EXPECT_NE(text.find("TransferBThenA"), text.npos) << text;
  EXPECT_NE(text.find("TransferAThenB"), text.npos) << text;
  EXPECT_EQ(Get("/debug/lockprof/lock-order"), text);

  const std::string json = Get("/debug/lockprof/lock-order", "format=json");
  EXPECT_NE(json.find("\"found\":1"), json.npos) << json;
  EXPECT_NE(json.find("{\"from\":\"bank.b\",\"to\":\"bank.a\""), json.npos) << json;
  EXPECT_NE(json.find("{\"from\":\"bank.a\",\"to\":\"bank.b\""), json.npos) << json;
  EXPECT_NE(json.find("TransferAThenB"), json.npos) << json;

  const std::string metrics = Get("/metrics");
  EXPECT_NE(metrics.find("\nlockprof_lock_order_inversions_total 1\n"), metrics.npos);
}

TEST_F(LockOrderTest, TryLockCreatesNoEdgeIntoItsLock) {
  Mutex a("try.a"), b("try.b");
  OnThread([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    MutexLock la(&a);
    ASSERT_TRUE(b.try_lock());  // a -> b by a try: cannot wait, no edge.
    b.unlock();
  });
  OnThread([&] {
    MutexLock lb(&b);
    MutexLock la(&a);  // b -> a
  });
  EXPECT_EQ(NewInversions(), 0u);
  // But a lock taken by a try is held: edges start from it.
  OnThread([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    ASSERT_TRUE(a.try_lock());
    b.lock();  // a -> b, blocking: closes the cycle with b -> a.
    b.unlock();
    a.unlock();
  });
  EXPECT_EQ(NewInversions(), 1u);
}

TEST_F(LockOrderTest, ThreeLockCycle) {
  Mutex a("ring.a"), b("ring.b"), c("ring.c");
  auto nested = [](Mutex* outer, Mutex* inner) {
    OnThread([=] {
      MutexLock l1(outer);
      MutexLock l2(inner);
    });
  };
  nested(&a, &b);
  nested(&b, &c);
  EXPECT_EQ(NewInversions(), 0u);
  nested(&c, &a);
  EXPECT_EQ(NewInversions(), 1u);
  EXPECT_EQ(hook_edges,
            (std::vector<std::string>{"ring.c->ring.a", "ring.a->ring.b", "ring.b->ring.c"}));
}

// Reports keep the first 16 edges of a longer cycle and say how many more
// it has, and cut a long name at a character boundary: what they keep is
// fixed in size, as it is copied inside the application's lock calls.
constexpr char kLongName[] =
    "ring.long.x\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";  // 11 + 2 x 59 bytes.

TEST_F(LockOrderTest, LongCycleAndLongNameAreCutWhereTheReportSaysSo) {
  constexpr int kLocks = 20;
  std::vector<std::unique_ptr<Mutex>> ring;
  ring.push_back(std::make_unique<Mutex>(kLongName));
  for (int i = 1; i < kLocks; ++i) ring.push_back(std::make_unique<Mutex>("ring.link"));
  for (int i = 0; i < kLocks; ++i) {
    OnThread([&] {
      MutexLock outer(ring[i].get());
      MutexLock inner(ring[(i + 1) % kLocks].get());
    });
  }
  ASSERT_EQ(NewInversions(), 1u);
  ASSERT_EQ(hook_edges.size(), 16u);
  // The edge just taken first: the last link, into the long name.
  const std::string cut = hook_edges[0].substr(hook_edges[0].find("->") + 2);
  EXPECT_EQ(cut.size(), 11u + 2 * 56 + 3) << cut;  // 124 bytes would split an é.
  EXPECT_EQ(cut, std::string(kLongName, 11 + 2 * 56) + "...");
  const std::string text = LockOrderReport();
  EXPECT_NE(text.find("cycle of 20 locks:"), std::string::npos) << text;
  EXPECT_NE(text.find("(4 more, not kept) ->"), std::string::npos) << text;
  EXPECT_NE(Get("/debug/lockprof/lock-order", "format=json").find("\"length\":20,"),
            std::string::npos);
}

TEST_F(LockOrderTest, DestroyedLockTakesItsEdgesWithIt) {
  alignas(Mutex) unsigned char storage[sizeof(Mutex)];
  Mutex b("reuse.b");
  auto* a = new (storage) Mutex("reuse.a");
  OnThread([&] {
    MutexLock la(a);
    MutexLock lb(&b);  // reuse.a -> reuse.b
  });
  a->~Mutex();
  // Another lock at the same address, taken in the other order: no cycle,
  // since reuse.a is gone.
  auto* a2 = new (storage) Mutex("reuse.a2");
  OnThread([&] {
    MutexLock lb(&b);
    MutexLock la(a2);
  });
  EXPECT_EQ(NewInversions(), 0u);
  a2->~Mutex();
}

TEST_F(LockOrderTest, ReadReadInversionOnSharedMutexesIsReported) {
  // Readers queue behind a waiting writer, so two threads each holding one
  // read lock and wanting the other deadlock once writers wait on both.
  SharedMutex a("rw.a"), b("rw.b");
  OnThread([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    a.lock_shared();
    b.lock_shared();
    b.unlock_shared();
    a.unlock_shared();
  });
  OnThread([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    b.lock_shared();
    a.lock_shared();
    a.unlock_shared();
    b.unlock_shared();
  });
  EXPECT_EQ(NewInversions(), 1u);
}

TEST_F(LockOrderTest, ReadLockTakenTwiceIsNoEdge) {
  SharedMutex a("twice.a");
  OnThread([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    a.lock_shared();
    a.lock_shared();
    a.unlock_shared();
    a.unlock_shared();
  });
  EXPECT_EQ(NewInversions(), 0u);
  EXPECT_EQ(LockOrderReport().find("twice.a"), std::string::npos);
  // Each read hold is forgotten by its own unlock: on this thread, with a
  // third hold still open, /held shows exactly one.
  std::string one, none;
  [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    a.lock_shared();
    a.lock_shared();
    a.lock_shared();
    a.unlock_shared();
    a.unlock_shared();
    one = Get("/debug/lockprof/held", "format=json");
    a.unlock_shared();
    none = Get("/debug/lockprof/held", "format=json");
  }();
  EXPECT_EQ(testing::CountOf(one, "\"held_ns\""), 1u) << one;
  EXPECT_EQ(none.find("twice.a"), std::string::npos) << none;
}

TEST_F(LockOrderTest, GraphIsBoundedAndCountsWhatItDrops) {
  Mutex outer("bounded.outer");
  std::vector<std::unique_ptr<Mutex>> inner;
  for (int i = 0; i < kMaxLockOrderNodes + 10; ++i) inner.push_back(std::make_unique<Mutex>());
  OnThread([&] {
    MutexLock l(&outer);
    for (auto& m : inner) {
      m->lock();
      m->unlock();
    }
  });
  const std::string metrics = Get("/metrics");
  const size_t at = metrics.find("\nlockprof_lock_order_dropped_total ");
  ASSERT_NE(at, metrics.npos);
  EXPECT_GE(std::stoll(metrics.substr(at + 35)), 10);
  EXPECT_EQ(NewInversions(), 0u);
}

TEST_F(LockOrderTest, OffRecordsNothing) {
  SetLockOrderChecking(LockOrderMode::kOff);
  OnThread(TransferAThenB);
  OnThread(TransferBThenA);
  EXPECT_EQ(NewInversions(), 0u);
  EXPECT_EQ(hook_calls.load(), 0);
}

// A read lock taken again with another lock in between: R, A, R. The second
// R adds no edge A -> R, which would close a "cycle" R -> A -> R that no
// other thread takes part in.
TEST_F(LockOrderTest, ReadLockRetakenWithAnotherInBetweenIsNoCycle) {
  SharedMutex r("retaken.r");
  Mutex a("retaken.a");
  OnThread([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    r.lock_shared();
    a.lock();
    r.lock_shared();
    r.unlock_shared();
    a.unlock();
    r.unlock_shared();
  });
  EXPECT_EQ(NewInversions(), 0u) << LockOrderReport();
}

// A thread keeps few read holds in its own state (their unlocks must find
// them); a read hold beyond those is not recorded, but its edges are
// checked all the same: M -> X here, with four other read holds open, and
// X -> M on another thread, is a deadlock order.
TEST_F(LockOrderTest, AReadLockBeyondTheThreadsRoomIsStillChecked) {
  SharedMutex others[4];
  SharedMutex x("room.x");
  Mutex m("room.m");
  OnThread([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (SharedMutex& s : others) s.lock_shared();
    m.lock();
    x.lock_shared();
    x.unlock_shared();
    m.unlock();
    for (SharedMutex& s : others) s.unlock_shared();
  });
  OnThread([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    x.lock();
    m.lock();
    m.unlock();
    x.unlock();
  });
  EXPECT_EQ(NewInversions(), 1u) << LockOrderReport();
}

// The hook runs with none of lockprof's locks held: it may take the
// application's own (a logger's), even while that lock's holder takes a
// lock order never seen before, which adds an edge to the graph. (Run
// under the graph's serialization, the two waited for each other.)
Mutex g_logger("hook.logger");
// A pair of its own: an inversion is reported once per process, and the
// bank's may have been by an earlier test.
Mutex g_hook_a("hook.a");
Mutex g_hook_b("hook.b");
ABSL_ATTRIBUTE_NOINLINE void HookAThenB() {
  MutexLock a(&g_hook_a);
  MutexLock b(&g_hook_b);
}
ABSL_ATTRIBUTE_NOINLINE void HookBThenA() {
  MutexLock b(&g_hook_b);
  MutexLock a(&g_hook_a);
}
std::atomic<bool> g_in_hook{false};
void LoggingHook(const LockOrderInversion&) {
  g_in_hook = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  MutexLock l(&g_logger);
}

TEST_F(LockOrderTest, HookMayTakeALockWhoseHolderAddsAnEdge) {
  SetLockOrderHook(LoggingHook);
  Mutex d("hook.d");
  OnThread(HookAThenB);
  std::atomic<bool> logger_held{false};
  std::thread logger([&] {
    MutexLock l(&g_logger);
    logger_held = true;
    while (!g_in_hook) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    MutexLock ld(&d);  // A new edge, hook.logger -> hook.d, while the hook runs.
  });
  while (!logger_held) std::this_thread::yield();
  std::atomic<bool> done{false};
  std::thread inverter([&] {
    HookBThenA();
    logger.join();
    done = true;
  });
  for (int ms = 0; ms < 10000 && !done; ms += 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!done) {
    ADD_FAILURE() << "the hook and the logger's holder wait for each other";
    std::_Exit(1);  // Both threads are stuck for good.
  }
  inverter.join();
  EXPECT_EQ(NewInversions(), 1u);
}

}  // namespace
// The per-thread cache of edges seen: a hundred locks side by side (an
// array of them, each taken under one registry lock) land in different
// slots, so that an edge seen before costs a thread-local lookup. Before,
// every lock within a MiB of another shared its slot: each of those edges
// missed the cache and took the graph's mutexes (218 ns against 25 ns per
// pair with a hundred entry locks).
// Abort mode aborts on every new inversion, also once the kept reports are
// full (their hook no longer runs): a program that ran in report mode and
// then switches to abort (a test suite's later phase) is not let through.
// In a forked child: the kept reports are the process's, and filling them
// here would leave the binary's later tests without their hooks.
// The profile read first creates the symbolizer, whose mutex fork() then
// takes as well: the report symbolizes its stacks under the report mutex,
// so fork() must take that one first (ThreadSanitizer reported the
// inversion, and a fork() during the report could hang it).
TEST_F(LockOrderTest, AbortModeAbortsPastTheKeptReports) {
  EXPECT_FALSE(Get("/debug/pprof/mutex", "debug=1").empty());
  const auto child = testing::RunInForkedChild([](int) {
    const uint64_t before = LockOrderInversions();
    std::vector<std::unique_ptr<Mutex>> locks;
    for (int i = 0; i < kMaxLockOrderReports; ++i) {
      locks.push_back(std::make_unique<Mutex>("pair.a"));
      locks.push_back(std::make_unique<Mutex>("pair.b"));
      Mutex* a = locks[locks.size() - 2].get();
      Mutex* b = locks.back().get();
      OnThread([&] { MutexLock la(a), lb(b); });
      OnThread([&] { MutexLock lb(b), la(a); });
    }
    if (LockOrderInversions() - before != uint64_t(kMaxLockOrderReports)) return 2;
    SetLockOrderChecking(LockOrderMode::kAbort);
    Mutex c("late.c"), d("late.d");
    { MutexLock lc(&c), ld(&d); }
    { MutexLock ld(&d), lc(&c); }
    return 0;  // Not aborted.
  });
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, -1) << "the child did not abort (2: the reports were not filled)";
}

TEST(LockOrderCacheTest, NeighbouringLocksLandInDifferentSlots) {
  static lockprof::Mutex registry;
  static lockprof::Mutex entries[100];
  std::set<size_t> slots;
  for (const lockprof::Mutex& e : entries) {
    slots.insert(lockprof::agent::ThreadLocks::CacheSlot(&registry, &e));
  }
  // 100 keys in 256 slots at random fill about 82 of them.
  EXPECT_GE(slots.size(), 70u);
}

// A self-deadlock is reported once per lock and stack (a mutex used as a
// semaphore, relocked and unlocked by another thread, waits at the same
// place again and again), for the latest 64 of them: past the first 64,
// every wait of a new one was reported.
TEST(LockOrderSelfWaitTest, EachOfTheLatestSelfWaitsIsReportedOnce) {
  static char locks[100];  // 100 addresses, no lock's.
  agent::StackTrace stack;
  stack.depth = 1;
  stack.pcs[0] = 0x1234;
  auto cycle = std::make_unique<agent::Cycle>();
  int first_kept = 0, kept = 0;
  const auto report = [&](int i) {
    return agent::AddSelfWait(&locks[i], "self", stack, 1, cycle.get(), &first_kept, &kept);
  };
  for (int i = 0; i < 100; ++i) EXPECT_EQ(report(i), 1) << i;
  for (int i = 36; i < 100; ++i) EXPECT_EQ(report(i), 0) << i;
  // Forgotten with its lock: another lock at its address is reported.
  agent::ForgetLockOrderNode(&locks[99]);
  EXPECT_EQ(report(99), 1);
}

}  // namespace lockprof
