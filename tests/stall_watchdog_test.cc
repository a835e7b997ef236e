// The stall watchdog's edge cases, in process: a stall hook that itself
// waits for a lock, and a holder recorded before since when and where were.
// (deadlock_test checks the common case: reported once, while still
// waiting, with the holder.)
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/primitives/mutex.h"
#include "route_get.h"
#include "test_util.h"

// Takes g_stall_abandoned on a thread that then exits; the test's thread
// releases it later, as a debugger would.
lockprof::Mutex g_stall_abandoned("stall.abandoned");
void AbandonTheLock() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_stall_abandoned.lock(); }
void RescueTheLock() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_stall_abandoned.unlock(); }

namespace lockprof {
namespace {

using namespace std::chrono_literals;

// How many threads /debug/lockprof/held lists as waiting.
size_t WaitersListed() {
  return testing::CountOf(testing::RouteGet("/debug/lockprof/held", "format=json"),
                          "\"waited_ns\"");
}

class StallWatchdogEdgeTest : public ::testing::Test {
 protected:
  void TearDown() override {
    SetLockStallHook(nullptr);
    SetStallReportThreshold(0ns);
    SetLockOrderChecking(LockOrderMode::kOff);
  }
};

// Holds `mu` for `hold` on a new thread; returns once it is held.
std::thread HoldFor(Mutex* mu, std::chrono::milliseconds hold) {
  std::atomic<bool> held{false};
  std::thread t([mu, hold, &held] {
    MutexLock l(mu);
    held = true;
    std::this_thread::sleep_for(hold);
  });
  while (!held) std::this_thread::yield();
  return t;
}

Mutex g_hook_mu("stall.hook.mu");
std::atomic<bool> g_in_hook{false}, g_hook_done{false};
void WaitingHook(const LockStall&) {
  g_in_hook = true;
  g_hook_mu.lock();  // Held by the test for a while: the hook sleeps.
  g_hook_mu.unlock();
  g_hook_done = true;
}

// The hook's own wait is nested in the wait being reported: it is neither
// published (its end would end the outer wait's entry on the held page) nor
// reported as a stall of its own.
TEST_F(StallWatchdogEdgeTest, AHookThatWaitsLeavesTheReportedWaitListed) {
  Mutex mu("stall.nested");
  const uint64_t stalls = LockStalls();  // The process's, from earlier tests too.
  SetStallReportThreshold(100ms);
  SetLockStallHook(WaitingHook);
  std::thread holder = HoldFor(&mu, 1500ms);
  g_hook_mu.lock();
  std::thread waiter([&] { MutexLock l(&mu); });
  while (!g_in_hook) std::this_thread::yield();
  std::this_thread::sleep_for(150ms);  // Past the threshold for the hook's wait too.
  g_hook_mu.unlock();
  while (!g_hook_done) std::this_thread::yield();
  EXPECT_EQ(WaitersListed(), 1u) << "the waiter still waits for stall.nested";
  holder.join();
  waiter.join();
  EXPECT_EQ(LockStalls() - stalls, 1u);
}

std::atomic<int64_t> g_held_ms{-1};
void HeldHook(const LockStall& s) { g_held_ms = s.held.count() / 1000000; }

// Lock-order checking alone records which locks a thread holds, not since
// when: a stall on such a hold reports its holder with no hold time (it
// reported the machine's uptime).
TEST_F(StallWatchdogEdgeTest, AHolderRecordedWithoutDetailsHasNoHoldTime) {
  Mutex mu("stall.undetailed");
  const uint64_t stalls = LockStalls();
  SetLockOrderChecking(LockOrderMode::kReport);
  std::thread holder = HoldFor(&mu, 600ms);
  SetStallReportThreshold(100ms);
  SetLockStallHook(HeldHook);
  std::thread waiter([&] { MutexLock l(&mu); });
  holder.join();
  waiter.join();
  EXPECT_EQ(LockStalls() - stalls, 1u);
  EXPECT_EQ(g_held_ms.load(), 0);
}

// A threshold of nanoseconds::max() ("never") is taken as a century: a
// wait's start plus the threshold overflowed (undefined behaviour, which the
// UBSan build stops at), and no wait is reported.
TEST_F(StallWatchdogEdgeTest, TheLongestThresholdNeverOverflows) {
  Mutex mu("stall.never");
  const uint64_t stalls = LockStalls();
  SetStallReportThreshold(std::chrono::nanoseconds::max());
  std::thread holder = HoldFor(&mu, 100ms);
  std::thread waiter([&] { MutexLock l(&mu); });
  holder.join();
  waiter.join();
  EXPECT_EQ(LockStalls(), stalls);
}

// A process found stuck, then the watchdog switched on: a thread already
// asleep for a lock is reported within about a second (the longest a
// reportable wait sleeps at a time). It read the threshold only as it went
// to sleep, and slept on unreported for good.
TEST_F(StallWatchdogEdgeTest, AWatchdogSwitchedOnFindsAWaiterAlreadyAsleep) {
  Mutex mu("stall.late.watchdog");
  const uint64_t stalls = LockStalls();
  std::thread holder = HoldFor(&mu, 4000ms);
  std::atomic<pid_t> tid{0};
  std::thread waiter([&] {
    tid = testing::ThisThreadId();
    MutexLock l(&mu);
  });
  while (tid == 0) std::this_thread::yield();
  ASSERT_TRUE(testing::WaitUntilAsleep(tid));
  SetStallReportThreshold(50ms);
  EXPECT_TRUE(testing::WaitFor([&] { return LockStalls() - stalls == 1; }, 3000));
  holder.join();
  waiter.join();
}

std::atomic<int64_t> g_stall_holder{-1};
std::atomic<bool> g_stall_holder_exited{false};

// A thread that exits holding a lock (the abandoned lock, a classic hang)
// is still named as its holder, with the name it had and the stack where it
// took the lock, on the held page and in the stall report: before, its
// record went with it, and both said the holder was not recorded.
TEST_F(StallWatchdogEdgeTest, AHolderThatExitedIsStillNamed) {
  SetHeldLockTracking(true);
  SetStallReportThreshold(100ms);
  SetLockStallHook([](const LockStall& s) {
    g_stall_holder_exited = s.holder_exited;
    g_stall_holder = s.holder_thread_id;
  });
  int64_t holder_tid = 0;
  std::thread([&] {
    pthread_setname_np(pthread_self(), "abandoner");
    AbandonTheLock();
    holder_tid = testing::ThisThreadId();
  }).join();  // Exits holding it.
  std::thread waiter([] { MutexLock l(&g_stall_abandoned); });
  ASSERT_TRUE(testing::WaitFor([] { return g_stall_holder.load() != -1; }, 10000));
  const std::string text = testing::RouteGet("/debug/lockprof/held");
  const std::string json = testing::RouteGet("/debug/lockprof/held", "format=json");
  RescueTheLock();
  waiter.join();
  SetHeldLockTracking(false);
  EXPECT_EQ(g_stall_holder.load(), holder_tid);
  EXPECT_TRUE(g_stall_holder_exited.load());
  EXPECT_NE(text.find("held by thread " + std::to_string(holder_tid) + " (abandoner, exited)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("stall_watchdog_test.cc:"), std::string::npos) << text;  // Its stack.
  EXPECT_NE(json.find("\"thread\":\"abandoner\",\"exited\":true"), std::string::npos) << json;
}

// GCC says __SANITIZE_*__, clang __has_feature.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LOCKPROF_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LOCKPROF_TEST_SANITIZED 1
#endif
#endif

// A thread made with the smallest stack POSIX allows (PTHREAD_STACK_MIN,
// 16 KiB, its TLS included) that stalls: the report is written without
// stdio's 8 KiB buffer, and names the holder's frame by its address rather
// than symbolize it (about 10 KiB); both overflowed that stack. The
// sanitizers' frames are no measure of it (under AddressSanitizer the
// report overflowed 256 KiB in its malloc): there the thread gets the
// default stack, and the test checks the report only.
void* WaitOnASmallStack(void* mu) {
  MutexLock l(static_cast<Mutex*>(mu));
  return nullptr;
}

TEST_F(StallWatchdogEdgeTest, AWaiterOnAMinimalStackIsReported) {
#ifdef LOCKPROF_TEST_SANITIZED
  const size_t kStack = 0;  // The default.
#else
  const size_t kStack = PTHREAD_STACK_MIN;
#endif
  static Mutex mu("stall.small_stack");
  SetStallReportThreshold(20ms);
  std::thread holder = HoldFor(&mu, 200ms);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (kStack != 0) {
    ASSERT_EQ(pthread_attr_setstacksize(&attr, kStack), 0);
  }
  ::testing::internal::CaptureStderr();
  pthread_t waiter;
  ASSERT_EQ(pthread_create(&waiter, &attr, WaitOnASmallStack, &mu), 0);
  pthread_attr_destroy(&attr);
  pthread_join(waiter, nullptr);
  holder.join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("lockprof: stall: thread "), std::string::npos) << err;
  EXPECT_NE(err.find("for lock \"stall.small_stack\", held by thread "), std::string::npos) << err;
}

// The report is written inside the stalled thread's lock call, while that
// thread holds other locks: with stdio it took stderr's lock, and a logger
// that holds stderr (one message written in parts) while it waits for one
// of those locks deadlocked with it. Run in a child, which a deadlock
// leaves to its alarm.
TEST_F(StallWatchdogEdgeTest, AReportNeverWaitsForStderrsLock) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(10);
    static Mutex held("stall.stdio.held"), logged("stall.stdio.logged");
    SetStallReportThreshold(50ms);
    std::thread holder = HoldFor(&held, 300ms);
    std::thread stalled([] {
      MutexLock l(&logged);
      MutexLock h(&held);  // Reported while `logged` is held.
    });
    std::this_thread::sleep_for(10ms);
    std::thread logger([] {
      flockfile(stderr);
      std::fputs("logger: state=", stderr);
      logged.lock();
      std::fputs("ok\n", stderr);
      logged.unlock();
      funlockfile(stderr);
    });
    holder.join();
    stalled.join();
    logger.join();
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the child " << (WIFSIGNALED(status) ? "hung (alarm)" : "failed");
}

}  // namespace
}  // namespace lockprof
