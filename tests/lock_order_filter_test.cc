// The lock-order graph's filter of addresses that may be nodes
// (agent/deadlock/node_filter.h), in a process whose heap locks come and go,
// each a node for a while: it must keep telling the locks that never were
// nodes apart, or every lock's destruction takes the graph's mutex.
#include <cstdio>
#include <memory>
#include <new>
#include <random>

#include "gtest/gtest.h"
#include "lockprof/agent/deadlock/node_filter.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/primitives/mutex.h"

namespace lockprof {
namespace {

TEST(LockOrderFilterTest, LocksThatComeAndGoLeaveTheFilterSelective) {
  SetLockOrderChecking(LockOrderMode::kReport);
  Mutex outer("filter.outer");
  // 120,000 locks at distinct addresses, each a node (taken while holding
  // `outer`) and then destroyed: at most one alive at a time.
  constexpr size_t kLocks = 120000;
  auto storage = std::make_unique<unsigned char[]>(kLocks * sizeof(Mutex) + alignof(Mutex));
  auto* base = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(storage.get()) + alignof(Mutex) - 1) & ~(alignof(Mutex) - 1));
  for (size_t i = 0; i < kLocks; ++i) {
    Mutex* mu = new (base + i * sizeof(Mutex)) Mutex("filter.inner");
    {
      MutexLock l(&outer);
      MutexLock l2(mu);
    }
    mu->~Mutex();
  }
  SetLockOrderChecking(LockOrderMode::kOff);
  // Addresses that were never locks, anywhere in 64 MiB of memory: those
  // the filter calls "maybe" cost their destruction a look under the
  // graph's mutex.
  auto never = std::make_unique<unsigned char[]>(size_t{64} << 20);
  std::mt19937_64 random(42);
  int maybe = 0;
  for (int i = 0; i < 10000; ++i) {
    const size_t offset = (random() % (size_t{64} << 20)) & ~size_t{7};
    maybe += agent::graph::MaybeNode(never.get() + offset) ? 1 : 0;
  }
  EXPECT_LT(maybe, 3000) << "of 10000 addresses that never were nodes";
  // And of another array of locks, whose addresses step as those above did.
  auto array = std::make_unique<Mutex[]>(10000);
  int maybe_in_array = 0;
  for (int i = 0; i < 10000; ++i) maybe_in_array += agent::graph::MaybeNode(&array[i]) ? 1 : 0;
  EXPECT_LT(maybe_in_array, 3000) << "of 10000 locks of an array that never were nodes";
  std::printf("maybe: %d of 10000 addresses, %d of 10000 locks of an array\n", maybe,
              maybe_in_array);
}

}  // namespace
}  // namespace lockprof
