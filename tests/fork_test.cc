// fork(): a child, whatever the parent's other threads were doing at the
// moment of the fork, can lock and unlock lockprof's primitives, intern
// labels and build profiles; its profiles start with everything the parent
// had recorded (inherited) and charge nothing to the parent's threads; and a
// child that execs keeps no lockprof thread or socket.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "lifecycle_util.h"
#include "lockprof/agent/symbolize/mappings.h"
#include "lockprof/agent/symbolize/symbolizer.h"

namespace {

using lockprof::testing::AllRatesAtOne;
using lockprof::testing::BackgroundLoops;
using lockprof::testing::Child;
using lockprof::testing::FetchProfile;
using lockprof::testing::FetchProfileBytes;
using lockprof::testing::ParseProfile;
using lockprof::testing::RunInForkedChild;
using lockprof::testing::SumValues;
using lockprof::testing::WriteAll;

// Distinct bodies: identical ones would be folded into one function (GCC's
// -fipa-icf), and the profile would name only one of them.
int g_trace[4];

ABSL_ATTRIBUTE_NOINLINE void ParentUnlocks(lockprof::Mutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu->unlock();
  ++g_trace[0];
}

ABSL_ATTRIBUTE_NOINLINE void ChildUnlocks(lockprof::Mutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu->unlock();
  ++g_trace[1];
}

// try_lock and unlock, as a child does after releasing a lock it held.
bool ChildLocksAgain(lockprof::Mutex* mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (!mu->try_lock()) return false;
  mu->unlock();
  return true;
}

ABSL_ATTRIBUTE_NOINLINE void ParentHolds(lockprof::Mutex* mu) {
  lockprof::MutexLock lock(mu);
  ++g_trace[2];
}

ABSL_ATTRIBUTE_NOINLINE void ChildHolds(lockprof::Mutex* mu) {
  lockprof::MutexLock lock(mu);
  ++g_trace[3];
}

// The forking thread holds a lock that three parent threads sleep on. In
// the child those threads do not exist: unlocking there must charge nobody's
// wait (without the ledger's fork generation, the child charges the three
// phantom waits, and may spin forever on a ledger lock a parent thread held).
TEST(ForkTest, ChildUnlockChargesNoWaitOfParentThreads) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  AllRatesAtOne rates;
  lockprof::Mutex mu{"fork.waited"};
  mu.lock();
  // The three are asleep on the lock, so counted as its waiters, at the fork.
  std::vector<std::thread> waiters =
      lockprof::testing::StartBlocked(3, [&] { lockprof::MutexLock lock(&mu); });

  auto child = RunInForkedChild([&](int fd) {
    ChildUnlocks(&mu);
    if (!ChildLocksAgain(&mu)) return 2;
    return WriteAll(fd, FetchProfileBytes("mutex")) ? 0 : 3;
  });
  ASSERT_FALSE(child.timed_out);
  ASSERT_EQ(child.exit_code, 0);
  EXPECT_EQ(SumValues(ParseProfile(child.output), 1, "ChildUnlocks"), 0);

  // The parent's own unlock is charged: proof that the three did wait.
  ParentUnlocks(&mu);
  for (auto& t : waiters) t.join();
  EXPECT_GT(SumValues(FetchProfile("mutex"), 1, "ParentUnlocks"), 0);
}

// Parent threads keep the symbolizer, the label registry, the dynamic
// loader's lock and the wait ledgers busy while the main thread forks again
// and again. Every child must intern labels, lock, and build every profile.
// Without the atfork handlers a child inherits a mutex held by a thread that
// does not exist there, and deadlocks (the parent kills it after a timeout).
// Tested with the threads running at the fork in the g++ and ThreadSanitizer
// builds; in the AddressSanitizer build they are paused (see
// kAllocatorIsForkSafe).
TEST(ForkTest, ChildrenOfABusyProcessNeverDeadlock) {
  AllRatesAtOne rates;
  lockprof::Mutex busy{"fork.busy"};
  std::atomic<uintptr_t> offset{0};
  std::atomic<int> label{0};
  BackgroundLoops background;  // Declared last: its threads stop first.
  for (int i = 0; i < 2; ++i) background.Loop([&] { lockprof::MutexLock lock(&busy); });
  background.Loop([&] {  // Symbolizes pcs never seen: long holds of its mutex.
    const auto base = reinterpret_cast<uintptr_t>(&ParentHolds);
    lockprof::agent::Symbolizer::Global().Symbolize(base + offset.fetch_add(7) % 65536);
  });
  background.Loop([&] {  // Interns new label sets: holds the registry's mutex.
    lockprof::ScopedLabels labels({{"fork.iteration", std::to_string(label++ % 5000)}});
  });
  background.Loop([] { FetchProfileBytes("block", 1); });  // Scrapes.
  background.Loop([] {  // Walks the loaded objects: holds the loader's lock.
    lockprof::agent::BuildIdForAddress(reinterpret_cast<uintptr_t>(&ParentHolds));
  });
  // Every loop is busy before the first fork (a fork before they start
  // would test a quiet process).
  ASSERT_TRUE(background.WaitUntilEachRan(3)) << "a background loop never ran";
  lockprof::Mutex mine{"fork.mine"};
  for (int i = 0; i < 20; ++i) {
    // Under AddressSanitizer the parent's threads must be between two
    // bodies at the fork: its allocator would deadlock the child otherwise.
    if (!lockprof::testing::kAllocatorIsForkSafe) background.Pause();
    auto child = RunInForkedChild([&](int fd) {
      lockprof::ScopedLabels labels({{"fork.child", std::to_string(i)}});
      ChildHolds(&mine);
      std::string all;
      for (const std::string& name : lockprof::ProfileNames()) {
        all += FetchProfileBytes(name, 0) + FetchProfileBytes(name, 1);
      }
      return WriteAll(fd, all.empty() ? "" : "ok") ? 0 : 3;
    });
    background.Resume();
    ASSERT_FALSE(child.timed_out) << "child " << i << " deadlocked";
    ASSERT_EQ(child.exit_code, 0) << "child " << i;
    EXPECT_EQ(child.output, "ok");
  }
}

// Documented behaviour: the child's profiles are inherited (they start with
// what the parent recorded), and what the child records stays in the child.
TEST(ForkTest, ProfilesAreInheritedAndThenIndependent) {
  AllRatesAtOne rates;
  lockprof::Mutex mu{"fork.inherit"};
  ParentHolds(&mu);
  auto child = RunInForkedChild([&](int fd) {
    ChildHolds(&mu);
    return WriteAll(fd, FetchProfileBytes("hold")) ? 0 : 3;
  });
  ASSERT_EQ(child.exit_code, 0);
  auto in_child = ParseProfile(child.output);
  EXPECT_EQ(SumValues(in_child, 0, "ParentHolds"), 1);
  EXPECT_EQ(SumValues(in_child, 0, "ChildHolds"), 1);
  auto in_parent = FetchProfile("hold");
  EXPECT_EQ(SumValues(in_parent, 0, "ParentHolds"), 1);
  EXPECT_EQ(SumValues(in_parent, 0, "ChildHolds"), 0);
}

int CountEntries(const std::string& dir, const std::string& link_prefix = "") {
  int n = 0;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (link_prefix.empty()) {
      ++n;
      continue;
    }
    char target[256];
    ssize_t len = readlink((dir + "/" + e->d_name).c_str(), target, sizeof target - 1);
    if (len > 0 && std::string(target, size_t(len)).rfind(link_prefix, 0) == 0) ++n;
  }
  closedir(d);
  return n;
}

// The threads of `lockprof-lifecycle-child idle` (which has locked a
// Mutex), and how many of its open files are sockets.
std::pair<int, int> IdleChildThreadsAndSockets() {
  Child idle({LOCKPROF_LIFECYCLE_CHILD_PATH, "idle"});
  EXPECT_NE(idle.WaitForLine("ready"), "");
  std::string proc = "/proc/" + std::to_string(idle.pid());
  return {CountEntries(proc + "/task"), CountEntries(proc + "/fd", "socket:")};
}

// A parent with the admin server, a scraper and contending threads forks and
// execs a lockprof program: the new program runs the same threads as when
// started from a quiet parent (1, plus the sanitizer's own, if any), and
// holds none of the parent's sockets.
TEST(ForkTest, ExecedChildInheritsNoThreadsOrSockets) {
  const auto quiet = IdleChildThreadsAndSockets();
  EXPECT_EQ(quiet.second, 0);
  AllRatesAtOne rates;
  ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  int port = lockprof::AdminServerPort();
  lockprof::Mutex busy{"fork.exec"};
  {
    BackgroundLoops background;
    for (int i = 0; i < 2; ++i) background.Loop([&] { lockprof::MutexLock lock(&busy); });
    background.Loop([&] { lockprof::testing::HttpGet(port, "/debug/pprof/mutex"); });
    const auto busy_parent = IdleChildThreadsAndSockets();
    EXPECT_EQ(busy_parent.first, quiet.first);
    EXPECT_EQ(busy_parent.second, 0) << "parent sockets leaked into exec";
  }
  lockprof::StopAdminServer();
}

}  // namespace
