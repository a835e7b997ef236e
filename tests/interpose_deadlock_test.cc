// Deadlocks in a program that knows nothing of lockprof, under
// liblockprof_preload.so (lockprof-interpose-deadlock: two global
// std::mutexes, -O2 without frame pointers): a lock-order inversion that
// never hangs is reported (kAbort exits with it), a real deadlock is read
// through /debug/lockprof/held while it hangs, and heap mutexes stay out of
// the lock-order graph; the stall watchdog reports waits inside glibc.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <string>
#include <thread>

#include "test_util.h"

namespace {

using lockprof::testing::Child;
using lockprof::testing::CountOf;
using lockprof::testing::FreeLoopbackPort;
using lockprof::testing::GoPprof;
using lockprof::testing::HttpGet;
using lockprof::testing::NumberAfter;
using lockprof::testing::RunCommand;
using lockprof::testing::WaitForWaiters;

std::string Preloaded(const std::string& env, const std::string& mode, int* status) {
  return RunCommand(std::string("LD_PRELOAD=") + LOCKPROF_PRELOAD_PATH + " " + env + " " +
                        LOCKPROF_INTERPOSE_DEADLOCK_PATH + " " + mode + " 2>&1",
                    status);
}

TEST(InterposeDeadlockTest, AnInversionOfGlobalMutexesAbortsWithTheReport) {
  int status = 0;
  const std::string out = Preloaded("LOCKPROF_LOCK_ORDER=abort", "inversion", &status);
  EXPECT_TRUE(lockprof::testing::DiedOfAbort(status)) << status << "\n" << out;
  EXPECT_EQ(out.find("done"), out.npos) << out;
  EXPECT_NE(out.find("lock-order inversion, aborting"), out.npos) << out;
  // The locks are named by their symbols; each order at the function that
  // took it, unwound without frame pointers.
  EXPECT_NE(out.find("cycle of 2 locks: \"g_bank_b\" -> \"g_bank_a\" -> \"g_bank_b\""), out.npos)
      << out;
  EXPECT_NE(out.find("TransferAThenB"), out.npos) << out;
  EXPECT_NE(out.find("TransferBThenA"), out.npos) << out;
}

// An acquisition with a deadline cannot hang (as a try cannot): a program
// whose thread holding one lock takes another in a timed call, and backs
// off if it times out, has no potential deadlock with a thread that takes
// them the other way, and abort mode must not end it. (Before, the timed
// calls made edges, waiting or not, and the program was aborted.) As
// ThreadSanitizer treats them.
TEST(InterposeDeadlockTest, TimedAcquisitionsMakeNoInversion) {
  int status = 0;
  const std::string out = Preloaded("LOCKPROF_LOCK_ORDER=abort", "backoff", &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << out;
  EXPECT_NE(out.find("done"), out.npos) << out;
  EXPECT_EQ(out.find("inversion"), out.npos) << out;
}

TEST(InterposeDeadlockTest, ReportModeReportsOnceAndGoesOn) {
  int status = 0;
  const std::string out = Preloaded("LOCKPROF_LOCK_ORDER=report", "inversion", &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_EQ(CountOf(out, "lockprof: lock-order inversion (potential deadlock)"), 1u) << out;
  EXPECT_NE(out.find("done"), out.npos) << out;
}

// A std::mutex taken again by its holder (a helper that locks what its
// caller holds): glibc's mutex hangs for good; with lock-order checking the
// program aborts with the self-deadlock, the lock and the helper's stack.
TEST(InterposeDeadlockTest, ARelockedStdMutexAbortsWithTheReport) {
  int status = 0;
  const std::string out = Preloaded("LOCKPROF_LOCK_ORDER=abort", "relock", &status);
  EXPECT_TRUE(lockprof::testing::DiedOfAbort(status)) << status << "\n" << out;
  EXPECT_NE(out.find("self-deadlock: thread"), out.npos) << out;
  EXPECT_NE(out.find("(auditor) waits for \"g_bank_a\", which it holds"), out.npos) << out;
  EXPECT_NE(out.find("AuditAccount"), out.npos) << out;
}

// Heap mutexes die without a call the interposer sees (std::mutex's
// destructor makes none) and their memory becomes other locks': they make
// no edges, so the same inversion on the heap is not reported.
TEST(InterposeDeadlockTest, HeapMutexesStayOutOfTheGraph) {
  int status = 0;
  const std::string out = Preloaded("LOCKPROF_LOCK_ORDER=abort", "heap-inversion", &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << out;
  EXPECT_EQ(out.find("lock-order inversion"), out.npos) << out;
  EXPECT_NE(out.find("done"), out.npos) << out;
}

TEST(InterposeDeadlockTest, HeldLocksShowARealDeadlockWhileItHangs) {
  const int port = FreeLoopbackPort();
  Child child({LOCKPROF_INTERPOSE_DEADLOCK_PATH, "deadlock"},
              {std::string("LD_PRELOAD=") + LOCKPROF_PRELOAD_PATH,
               "LOCKPROF_ADMIN_ADDR=127.0.0.1:" + std::to_string(port),
               "LOCKPROF_LOCK_ORDER=report", "LOCKPROF_TRACK_HELD=1"});
  ASSERT_NE(child.WaitForLine("ready"), "");
  const std::string json = WaitForWaiters(port, 2);
  ASSERT_EQ(CountOf(json, "\"waited_ns\":"), 2u) << json;
  // Both locks, each with its holder and its waiter, the threads named.
  EXPECT_EQ(CountOf(json, "\"held_ns\":"), 2u) << json;
  EXPECT_NE(json.find("{\"lock\":\"g_bank_a\""), json.npos) << json;
  EXPECT_NE(json.find("{\"lock\":\"g_bank_b\""), json.npos) << json;
  EXPECT_EQ(CountOf(json, "\"thread\":\"worker-ab\""), 2u) << json;
  EXPECT_EQ(CountOf(json, "\"thread\":\"worker-ba\""), 2u) << json;

  const int64_t waited = NumberAfter(json, "\"waited_ns\":");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_GE(NumberAfter(WaitForWaiters(port, 2), "\"waited_ns\":"), waited + 250000000);

  int status = 0;
  const std::string text = HttpGet(port, "/debug/lockprof/held", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(CountOf(text, "  held by thread "), 2u) << text;
  EXPECT_EQ(CountOf(text, "  awaited by thread "), 2u) << text;
  // Each holder's acquisition at the function that called lock() (a
  // frame-pointer walk: this program has none beyond it), each waiter's
  // wait unwound in full.
  EXPECT_EQ(CountOf(text, "::Take "), 4u) << text;
  EXPECT_EQ(CountOf(text, "TransferAThenB"), 1u) << text;
  EXPECT_EQ(CountOf(text, "TransferBThenA"), 1u) << text;

  // Reported before it hung: the second thread checked its order first.
  const std::string order = HttpGet(port, "/debug/lockprof/lock-order", &status);
  EXPECT_NE(order.find("cycle of 2 locks"), order.npos) << order;
  EXPECT_NE(HttpGet(port, "/metrics").find("lockprof_lock_order_inversions_total 1"),
            std::string::npos);

  const std::string file = lockprof::testing::WriteTempFile(
      HttpGet(port, "/debug/lockprof/held?debug=0", &status), ".pb.gz");
  EXPECT_EQ(status, 200);
  const std::string top = GoPprof("-top -sample_index=delay " + file);
  EXPECT_NE(top.find("TransferAThenB"), top.npos) << top;
  EXPECT_NE(top.find("TransferBThenA"), top.npos) << top;
  std::remove(file.c_str());
}

// LOCKPROF_STALL_REPORT_MS: a wait that outlasts it is reported once, while
// it waits, with its holder, for a mutex and an rwlock; a timed acquisition
// whose deadline comes first is not; each call returns what glibc's does,
// when glibc's would.
TEST(InterposeDeadlockTest, StallsInsideGlibcAreReportedWithTheirHolders) {
  int status = 0;
  const std::string out = Preloaded("LOCKPROF_STALL_REPORT_MS=200", "stall", &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << out;
  EXPECT_NE(out.find("done"), out.npos) << out;
  // The long timedlock, the lock and the rdlock: three stalls.
  EXPECT_EQ(CountOf(out, "lockprof: stall: thread "), 3u) << out;
  EXPECT_EQ(CountOf(out, "(waiter) has waited "), 3u) << out;
  EXPECT_GE(NumberAfter(out, "(waiter) has waited "), 199) << out;
  EXPECT_EQ(CountOf(out, "for lock \"g_bank_a\", held by thread "), 2u) << out;
  EXPECT_EQ(CountOf(out, "for lock \"g_table\", held by thread "), 1u) << out;
  EXPECT_EQ(CountOf(out, " (holder) for "), 3u) << out;
  EXPECT_EQ(CountOf(out, "acquired at (anonymous namespace)::HoldAccount "), 2u) << out;
  EXPECT_EQ(CountOf(out, "acquired at (anonymous namespace)::HoldTable "), 1u) << out;
  // The timed acquisitions time out at their own deadlines, the others
  // return when the holder lets go (1 s and 0.6 s after it took the lock).
  EXPECT_LT(NumberAfter(out, "timedlock 100 ms: ETIMEDOUT after "), 200) << out;
  EXPECT_GE(NumberAfter(out, "timedlock 400 ms: ETIMEDOUT after "), 395) << out;
  EXPECT_GE(NumberAfter(out, "lock after "), 300) << out;
  EXPECT_GE(NumberAfter(out, "rdlock 0 after "), 400) << out;
}

// A stall reported while a dlopen() holds the dynamic loader's lock (its
// library's constructor waits for a lock the program holds), then a fork():
// the stall's report symbolized the holder's stack with dladdr(), which
// waited for the loader's lock while holding the symbolizer's mutex, which
// fork() waits for; the program that would have let the constructor go
// was the one forking: a hang no request needed.
TEST(InterposeDeadlockTest, AStallDuringADlopenDoesNotHangAFork) {
  int status = 0;
  const std::string out =
      Preloaded("LOCKPROF_STALL_REPORT_MS=500 LOCKPROF_UNWIND=cfi timeout 30",
                std::string("dlopen-fork ") + LOCKPROF_CONSTRUCTOR_PLUGIN_PATH, &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << out;
  EXPECT_NE(out.find("done"), out.npos) << out;
  EXPECT_GE(CountOf(out, "lockprof: stall: thread "), 1u) << out;
}

// A program that brings libunwind (gperftools' and perf's users do) unwinds
// with it: libunwind locks pthread mutexes inside _Unwind_Backtrace, nested,
// with every signal blocked. Those locks must pass straight through: were
// they tracked, a new lock-order edge between two of them would unwind (to
// record the edge's stack) through libunwind again, while its lock is held,
// and hang for good (it did, at the first thread the program started, when
// lockprof still interposed pthread_create and unwound its creator).
TEST(InterposeDeadlockTest, AProgramThatBringsLibunwindDoesNotHangInIt) {
  ASSERT_STRNE(LOCKPROF_LIBUNWIND8_PATH, "") << "libunwind8 is not installed (tools/deps.sh test)";
  Child child({LOCKPROF_INTERPOSE_DEADLOCK_PATH, "inversion"},
              {std::string("LD_PRELOAD=") + LOCKPROF_LIBUNWIND8_PATH + " " + LOCKPROF_PRELOAD_PATH,
               "LOCKPROF_LOCK_ORDER=report", "LOCKPROF_UNWIND=cfi"});
  EXPECT_NE(child.WaitForLine("done", 30), "");
  EXPECT_EQ(child.Wait(30), 0);
}

// LOCKPROF_UNWIND=cfi: the holders' stacks unwound in full too, at a CFI
// unwind per acquisition.
TEST(InterposeDeadlockTest, UnwindCfiGivesHoldersTheirWholeStacks) {
  const int port = FreeLoopbackPort();
  Child child({LOCKPROF_INTERPOSE_DEADLOCK_PATH, "deadlock"},
              {std::string("LD_PRELOAD=") + LOCKPROF_PRELOAD_PATH,
               "LOCKPROF_ADMIN_ADDR=127.0.0.1:" + std::to_string(port), "LOCKPROF_TRACK_HELD=1",
               "LOCKPROF_UNWIND=cfi", "LOCKPROF_LOCK_ORDER=off"});
  ASSERT_NE(child.WaitForLine("ready"), "");
  ASSERT_EQ(CountOf(WaitForWaiters(port, 2), "\"waited_ns\":"), 2u);
  const std::string text = HttpGet(port, "/debug/lockprof/held");
  EXPECT_EQ(CountOf(text, "  held by thread "), 2u) << text;
  EXPECT_EQ(CountOf(text, "TransferAThenB"), 2u) << text;
  EXPECT_EQ(CountOf(text, "TransferBThenA"), 2u) << text;
}

}  // namespace
