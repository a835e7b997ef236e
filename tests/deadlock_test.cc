// Deadlocks and stalls, end to end, in a separate program
// (lockprof-deadlock-child): kAbort's exit with the report, and a real
// deadlock read through /debug/lockprof/held in all three forms while it
// hangs, go tool pprof included. And the stall watchdog, in process.
#include <sys/wait.h>

#include <csignal>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/primitives/mutex.h"
#include "test_util.h"

namespace lockprof {
namespace {

using testing::Child;
using testing::FreeLoopbackPort;
using testing::GoPprof;
using testing::HttpGet;
using testing::NumberAfter;
using testing::RunCommand;
using testing::WaitForWaiters;

TEST(DeadlockTest, AbortModePrintsTheReportAndAborts) {
  int status = 0;
  const std::string out = RunCommand(
      std::string("LOCKPROF_LOCK_ORDER=abort ") + LOCKPROF_DEADLOCK_CHILD_PATH + " inversion 2>&1",
      &status);
  EXPECT_TRUE(testing::DiedOfAbort(status)) << status << "\n" << out;
  EXPECT_EQ(out.find("done"), out.npos) << out;
  EXPECT_NE(out.find("lock-order inversion, aborting"), out.npos) << out;
  EXPECT_NE(out.find("cycle of 2 locks: \"bank.b\" -> \"bank.a\" -> \"bank.b\""), out.npos) << out;
  EXPECT_NE(out.find("TransferAThenB"), out.npos) << out;
  EXPECT_NE(out.find("TransferBThenA"), out.npos) << out;
}

TEST(DeadlockTest, ReportModeGoesOn) {
  int status = 0;
  const std::string out = RunCommand(
      std::string("LOCKPROF_LOCK_ORDER=report ") + LOCKPROF_DEADLOCK_CHILD_PATH + " inversion 2>&1",
      &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_EQ(testing::CountOf(out, "lockprof: lock-order inversion (potential deadlock)"), 1u)
      << out;
  EXPECT_NE(out.find("done"), out.npos) << out;
}

// A thread that waits for a lock it holds itself is reported before it
// hangs, as a cycle of one lock, in every form; abort mode exits with it.
TEST(DeadlockTest, AThreadWaitingForItsOwnLockIsReported) {
  for (const std::string mode : {"self", "self-read"}) {
    const std::string lock = mode == "self" ? "\"cache.self\"" : "\"cache.table\"";
    const std::string function = mode == "self" ? "RelockOwnMutex" : "RereadWithWriterWaiting";
    int status = 0;
    std::string out = RunCommand(std::string("LOCKPROF_LOCK_ORDER=report ") +
                                     LOCKPROF_DEADLOCK_CHILD_PATH + " " + mode + " 2>&1",
                                 &status);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    EXPECT_NE(out.find("inversions 1\n"), out.npos) << out;
    EXPECT_EQ(testing::CountOf(out, "lockprof: self-deadlock: thread "), 1u) << out;
    EXPECT_NE(out.find(" waits for " + lock + ", which it holds; stack at "), out.npos) << out;
    EXPECT_NE(out.find("Inversion 1: self-deadlock: thread "), out.npos) << out;
    EXPECT_NE(out.find(function), out.npos) << out;

    out = RunCommand(std::string("LOCKPROF_LOCK_ORDER=abort ") + LOCKPROF_DEADLOCK_CHILD_PATH +
                         " " + mode + " 2>&1",
                     &status);
    EXPECT_TRUE(testing::DiedOfAbort(status)) << status << "\n" << out;
    EXPECT_NE(out.find("lock-order inversion, aborting (LOCKPROF_LOCK_ORDER=abort): "
                       "self-deadlock: thread "),
              out.npos)
        << out;
    EXPECT_NE(out.find(function), out.npos) << out;
  }
}

TEST(DeadlockTest, HeldLocksShowARealDeadlockWhileItHangs) {
  const int port = FreeLoopbackPort();
  // Lock-order checking, and the holders' times and stacks.
  Child child({LOCKPROF_DEADLOCK_CHILD_PATH, "deadlock"},
              {"LOCKPROF_ADMIN_ADDR=127.0.0.1:" + std::to_string(port),
               "LOCKPROF_LOCK_ORDER=report", "LOCKPROF_TRACK_HELD=1"});
  ASSERT_NE(child.WaitForLine("ready"), "");
  const std::string json = WaitForWaiters(port, 2);
  ASSERT_EQ(testing::CountOf(json, "\"waited_ns\":"), 2u) << json;
  // Both locks, each with one holder and one waiter, the threads named.
  EXPECT_EQ(testing::CountOf(json, "\"held_ns\":"), 2u) << json;
  EXPECT_NE(json.find("{\"lock\":\"bank.a\""), json.npos) << json;
  EXPECT_NE(json.find("{\"lock\":\"bank.b\""), json.npos) << json;
  EXPECT_EQ(testing::CountOf(json, "\"thread\":\"worker-ab\""), 2u) << json;
  EXPECT_EQ(testing::CountOf(json, "\"thread\":\"worker-ba\""), 2u) << json;

  // The waits grow while it hangs.
  const int64_t waited = NumberAfter(json, "\"waited_ns\":");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string later = WaitForWaiters(port, 2);
  EXPECT_GE(NumberAfter(later, "\"waited_ns\":"), waited + 250000000) << later;

  int status = 0;
  const std::string text = HttpGet(port, "/debug/lockprof/held", &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(text.find("lock \"bank.a\""), text.npos) << text;
  EXPECT_NE(text.find("lock \"bank.b\""), text.npos) << text;
  EXPECT_EQ(testing::CountOf(text, "  held by thread "), 2u) << text;
  EXPECT_EQ(testing::CountOf(text, "  awaited by thread "), 2u) << text;
  // Each holder's acquisition and each waiter's wait, at its function.
  EXPECT_EQ(testing::CountOf(text, "TransferAThenB"), 2u) << text;
  EXPECT_EQ(testing::CountOf(text, "TransferBThenA"), 2u) << text;

  // The deadlock was reported before it hung: the second thread checked
  // its order before it slept.
  const std::string order = HttpGet(port, "/debug/lockprof/lock-order", &status);
  EXPECT_NE(order.find("cycle of 2 locks"), order.npos) << order;

  // The pprof form, read by go tool pprof: one sample per waiter.
  const std::string file =
      testing::WriteTempFile(HttpGet(port, "/debug/lockprof/held?debug=0", &status), ".pb.gz");
  EXPECT_EQ(status, 200);
  const std::string top = GoPprof("-top -sample_index=delay " + file);
  EXPECT_NE(top.find("TransferAThenB"), top.npos) << top;
  EXPECT_NE(top.find("TransferBThenA"), top.npos) << top;
  const std::string tags = GoPprof("-tags " + file);
  EXPECT_NE(tags.find("holder_tid"), tags.npos) << tags;
  EXPECT_NE(tags.find("waiter_tid"), tags.npos) << tags;
  EXPECT_NE(tags.find("bank.a"), tags.npos) << tags;
  std::remove(file.c_str());

  EXPECT_EQ(HttpGet(port, "/debug/lockprof/held?format=xml", &status).find("format"), 0u);
  EXPECT_EQ(status, 400);
}

Mutex g_stalled("stall.lock");
std::atomic<int> g_stalls_seen{0};
std::atomic<int64_t> g_stall_holder{0};
std::atomic<int64_t> g_stall_waited_ms{0};

void StallHook(const LockStall& s) {
  g_stalls_seen.fetch_add(1);
  g_stall_holder = s.holder_thread_id;
  g_stall_waited_ms = s.waited.count() / 1000000;
  EXPECT_STREQ(s.lock, "stall.lock");
  EXPECT_GT(s.holder_stack_depth, 0);
}

ABSL_ATTRIBUTE_NOINLINE void HoldTooLong(std::atomic<int64_t>* tid, std::atomic<bool>* held) {
  MutexLock l(&g_stalled);
  *tid = testing::ThisThreadId();
  *held = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
}

TEST(StallWatchdogTest, ReportsOnceWhileStillWaitingWithTheHolder) {
  const uint64_t stalls = LockStalls();  // The process's, from earlier tests too.
  SetStallReportThreshold(std::chrono::milliseconds(200));
  SetLockStallHook(StallHook);
  std::atomic<int64_t> holder_tid{0};
  std::atomic<bool> held{false};
  std::thread holder(HoldTooLong, &holder_tid, &held);
  while (!held) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  std::atomic<bool> acquired{false};
  std::thread waiter([&] {
    MutexLock l(&g_stalled);
    acquired = true;
  });
  // Reported while still waiting: before the holder lets go.
  while (g_stalls_seen.load() == 0 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(g_stalls_seen.load(), 1);
  EXPECT_FALSE(acquired.load());
  EXPECT_EQ(g_stall_holder.load(), holder_tid.load());
  EXPECT_GE(g_stall_waited_ms.load(), 200);
  holder.join();
  waiter.join();
  EXPECT_EQ(g_stalls_seen.load(), 1);  // Once per wait.
  EXPECT_EQ(LockStalls() - stalls, 1u);
  SetLockStallHook(nullptr);
  SetStallReportThreshold(std::chrono::nanoseconds(0));
}

}  // namespace
}  // namespace lockprof
