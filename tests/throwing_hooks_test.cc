// The application's hooks run inside its lock calls; one that throws must
// not unwind out of them. Out of a stalled lock(), the exception left the
// waiter registered with the lock for good (every later contended release
// charged it, and the lock stayed marked contended); out of the lock() that
// closed a lock-order cycle, it left the lock held with no guard to release
// it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "lock_order_fixture.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/slow_acquire.h"
#include "lockprof/primitives/internal/waiter_table.h"
#include "lockprof/primitives/mutex.h"

namespace lockprof {
namespace {

std::atomic<int> g_throws{0};

template <typename Event>
void Throw(const Event&) {
  g_throws.fetch_add(1);
  throw std::runtime_error("a hook that throws");
}

// Holds `mu` for `hold` while another thread locks it; returns whether that
// lock() threw (it must not).
bool LockThrewWhileHeld(Mutex& mu, std::chrono::milliseconds hold) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu.lock();
  std::atomic<bool> threw{false};
  std::thread waiter([&] {
    try {
      std::lock_guard<Mutex> l(mu);
    } catch (...) {
      threw = true;
    }
  });
  std::this_thread::sleep_for(hold);
  mu.unlock();
  waiter.join();
  return threw;
}

// The waiter table has no waiter left for `mu`: entering and leaving it
// again finds this thread the last one.
bool NoWaiterLeft(Mutex& mu) {
  const int64_t now = agent::MonotonicNanos();
  const bool registered = internal::Waiters().Enter(&mu, 0, now);
  bool last = false;
  internal::Waiters().Leave(&mu, 0, now, registered, [&] { last = true; });
  return last;
}

TEST(ThrowingHooksTest, AStallHookThatThrowsLeavesTheWaitWhole) {
  SetStallReportThreshold(std::chrono::milliseconds(20));
  SetLockStallHook(Throw<LockStall>);
  Mutex mu("throwing.stall");
  const int before = g_throws.load();
  EXPECT_FALSE(LockThrewWhileHeld(mu, std::chrono::milliseconds(300)));
  SetLockStallHook(nullptr);
  SetStallReportThreshold(std::chrono::nanoseconds(0));
  EXPECT_EQ(g_throws.load() - before, 1);
  EXPECT_TRUE(NoWaiterLeft(mu));
}

TEST(ThrowingHooksTest, ASlowAcquireHookThatThrowsLeavesTheLockCallWhole) {
  SetSlowAcquireHook(std::chrono::milliseconds(1), Throw<SlowAcquire>);
  Mutex mu("throwing.slow");
  const int before = g_throws.load();
  EXPECT_FALSE(LockThrewWhileHeld(mu, std::chrono::milliseconds(50)));
  SetSlowAcquireHook(std::chrono::milliseconds(1), nullptr);
  EXPECT_EQ(g_throws.load() - before, 1);
  if (mu.try_lock()) {
    mu.unlock();
  } else {
    ADD_FAILURE() << "the lock was left held";
  }
}

using ThrowingLockOrderHookTest = testing::LockOrderFixture;
TEST_F(ThrowingLockOrderHookTest, AnInversionHookThatThrowsLeavesTheLockCallWhole) {
  SetLockOrderHook(Throw<LockOrderInversion>);
  Mutex a("throwing.a"), b("throwing.b");
  const int before = g_throws.load();
  bool threw = false;
  OnThread([&] {
    MutexLock la(&a);
    MutexLock lb(&b);
  });
  OnThread([&] {
    try {
      MutexLock lb(&b);
      MutexLock la(&a);  // Closes the cycle: the hook runs here.
    } catch (...) {
      threw = true;
    }
  });
  EXPECT_FALSE(threw);
  EXPECT_EQ(g_throws.load() - before, 1);
  if (a.try_lock()) {
    a.unlock();
  } else {
    ADD_FAILURE() << "the lock whose acquisition threw was left held";
  }
}

}  // namespace
}  // namespace lockprof
