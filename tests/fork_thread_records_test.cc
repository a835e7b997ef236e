// fork() and the per-thread records that outlive their threads
// (agent/record/thread_records.h): in a child, the forking thread keeps its
// own record, and a thread the child starts gets a record of its own, never
// the forking thread's, even when it records first.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "lifecycle_util.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/agent/record/sampler.h"
#include "lockprof/agent/record/thread_state.h"
#include "lockprof/agent/tables/thread_cells.h"

// The children below start threads.
LOCKPROF_ALLOW_THREADS_AFTER_FORK()

namespace {

using lockprof::testing::RunInForkedChild;
using lockprof::testing::WriteAll;

void WaitForStage(const std::atomic<int>& stage, int want) {
  while (stage.load() != want) std::this_thread::sleep_for(std::chrono::microseconds(100));
}

int64_t Tid() { return int64_t(syscall(SYS_gettid)); }

// The names of the locks each thread holds, by thread id, from the
// snapshot /debug/lockprof/held is built from.
std::map<int64_t, std::set<std::string>> HeldByThread() {
  std::map<int64_t, std::set<std::string>> held;
  for (const lockprof::agent::ThreadLocksView& t : lockprof::agent::SnapshotThreadLocks()) {
    for (const lockprof::agent::LockView& l : t.held) held[t.tid].insert(l.name);
  }
  return held;
}

// The forking thread holds a lock, so it has a record. In the child, a new
// thread takes a lock first, then the forking thread takes another: each
// must be listed as its own thread holding its own locks. Before the
// forking thread's record was renewed at the fork, it looked like a dead
// parent thread's to the new thread, which claimed it: both threads then
// wrote one record, listed under the new thread's id with all three locks.
TEST(ForkThreadRecordsTest, ChildThreadsHoldLocksInRecordsOfTheirOwn)
ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::SetHeldLockTracking(true);
  lockprof::Mutex at_fork{"records.at_fork"}, in_thread{"records.thread"}, in_main{"records.main"};
  at_fork.lock();
  const auto child = RunInForkedChild([&](int out_fd) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::atomic<int> stage{0};
    std::atomic<int64_t> thread_tid{0};
    std::thread t([&] {
      thread_tid = Tid();
      in_thread.lock();
      stage = 1;
      WaitForStage(stage, 2);
      in_thread.unlock();
    });
    WaitForStage(stage, 1);
    in_main.lock();
    const std::map<int64_t, std::set<std::string>> held = HeldByThread();
    stage = 2;
    t.join();
    in_main.unlock();
    at_fork.unlock();
    const std::map<int64_t, std::set<std::string>> want = {
        {Tid(), {"records.at_fork", "records.main"}}, {thread_tid.load(), {"records.thread"}}};
    if (held == want) return 0;
    std::string got;
    for (const auto& [tid, names] : held) {
      got += std::to_string(tid) + (tid == Tid() ? " (forking thread):" : " (new thread):");
      for (const std::string& n : names) got += " " + n;
      got += "\n";
    }
    WriteAll(out_fd, got);
    return 1;
  });
  at_fork.unlock();
  lockprof::SetHeldLockTracking(false);
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0) << child.output;
}

// A parent thread is writing its lock record when the process forks (it
// does at every wait): the record's count stays odd in the child. A child
// thread that claims that record must be listed all the same; it was
// skipped for good, as if forever in the middle of a write.
TEST(ForkThreadRecordsTest, ARecordForkedMidWriteListsItsNextOwner) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::SetHeldLockTracking(true);
  lockprof::Mutex parent_mu{"records.parent"}, child_mu{"records.claimed"};
  std::atomic<int> stage{0};
  std::thread writer([&] {
    parent_mu.lock();  // Gives this thread a record.
    parent_mu.unlock();
    lockprof::agent::ThreadLocks* r = lockprof::agent::TheRecord();
    const uint32_t w = r->BeginWrite();
    stage = 1;
    WaitForStage(stage, 2);
    r->EndWrite(w);
  });
  WaitForStage(stage, 1);
  const auto child = RunInForkedChild([&](int out_fd) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::atomic<int64_t> tid{0};
    std::atomic<bool> listed_checked{false};
    std::thread t([&] {
      child_mu.lock();
      tid = Tid();
      while (!listed_checked.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
      child_mu.unlock();
    });
    while (tid.load() == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    const std::map<int64_t, std::set<std::string>> held = HeldByThread();
    listed_checked = true;
    t.join();
    const auto it = held.find(tid.load());
    if (it != held.end() && it->second == std::set<std::string>{"records.claimed"}) return 0;
    WriteAll(out_fd, "the child thread's lock is not listed");
    return 1;
  });
  stage = 2;
  writer.join();
  lockprof::SetHeldLockTracking(false);
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0) << child.output;
}

// Per-thread value cells (agent/tables/thread_cells.h): the forking thread
// has a block of cells; in the child a new thread adds first, then both add
// to one target at once. Every value must be read, once. A shared block
// (the new thread claiming the forking thread's) loses values: two threads
// then increment one owner-only cell.
struct Target {
  std::atomic<int64_t> values[2];
};
Target g_target;

void MoveToTarget(void* target, const int64_t* values) {
  auto* t = static_cast<Target*>(target);
  t->values[0].fetch_add(values[0], std::memory_order_relaxed);
  t->values[1].fetch_add(values[1], std::memory_order_relaxed);
}

void Add() { lockprof::agent::AddToCell(&g_target, MoveToTarget, 0, 1, 1, 1); }

int64_t ReadTarget() {
  int64_t n = 0;
  std::vector<lockprof::agent::CellValues> cells;
  lockprof::agent::ReadWithCells(
      &g_target, &g_target + 1, [&] { n = g_target.values[0].load(); }, &cells);
  for (const lockprof::agent::CellValues& c : cells) n += c.values[0];
  return n;
}

TEST(ForkThreadRecordsTest, ChildThreadsAddToCellsOfTheirOwn) {
  Add();  // The forking thread's block.
  const size_t blocks_at_fork = lockprof::agent::CellBlocks();
  const auto child = RunInForkedChild([&](int out_fd) {
    constexpr int kAdds = 2'000'000;
    const int64_t before = ReadTarget();
    std::atomic<int> stage{0};
    std::thread t([&] {
      Add();
      stage = 1;
      WaitForStage(stage, 2);
      for (int i = 1; i < kAdds; ++i) Add();
    });
    WaitForStage(stage, 1);
    const size_t blocks = lockprof::agent::CellBlocks();
    stage = 2;
    for (int i = 0; i < kAdds; ++i) Add();
    t.join();
    const int64_t added = ReadTarget() - before;
    if (added == 2 * kAdds && blocks == blocks_at_fork + 1) return 0;
    WriteAll(out_fd, "read " + std::to_string(added) + " of " + std::to_string(2 * kAdds) +
                         " values added; blocks " + std::to_string(blocks_at_fork) +
                         " at the fork, " + std::to_string(blocks) +
                         " once the child's thread added\n");
    return 1;
  });
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0) << child.output;
}

// Set on a thread of the test to make its next pthread_setspecific (the
// last step of claiming a record: thread_records.h) wait, as a thread
// preempted there would.
thread_local bool t_slow_claim = false;

}  // namespace

// Not under ThreadSanitizer, whose runtime calls pthread_setspecific while it
// sets a thread up, before this function's statics may be touched there:
// the test then runs without the delay (its claims still must not collide).
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LOCKPROF_TEST_NO_SETSPECIFIC_DELAY 1
#endif
#endif
#ifndef LOCKPROF_TEST_NO_SETSPECIFIC_DELAY
extern "C" int pthread_setspecific(pthread_key_t key, const void* value) {
  static const auto real = reinterpret_cast<int (*)(pthread_key_t, const void*)>(
      dlsym(RTLD_NEXT, "pthread_setspecific"));
  if (value != nullptr && t_slow_claim) {
    t_slow_claim = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return real(key, value);
}
#endif

namespace {

// A parent's thread that still runs at the fork leaves a block that no
// thread of the child owns. Two threads of the child that claim blocks at
// once must not both take it: the first, held up after its claim, had not
// yet marked it the child's, and the second took it too (two owners of
// owner-only cells: adds lost, and both threads' cells moved into each
// other's targets).
TEST(ForkThreadRecordsTest, TwoChildThreadsNeverClaimOneStaleBlock) {
  Add();
  std::atomic<bool> parent_done{false};
  std::thread parent_thread([&] {
    Add();  // Its block is in use at the fork.
    while (!parent_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (lockprof::agent::CellBlocks() < 2)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const size_t blocks_at_fork = lockprof::agent::CellBlocks();
  const auto child = RunInForkedChild([&](int out_fd) {
    constexpr int kAdds = 1'000'000;
    const int64_t before = ReadTarget();
    std::atomic<int> stage{0};
    auto adder = [&](bool slow) {
      t_slow_claim = slow;
      Add();
      stage.fetch_add(1);
      WaitForStage(stage, 3);
      for (int i = 1; i < kAdds; ++i) Add();
    };
    std::thread a(adder, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a waits in its claim.
    std::thread b(adder, false);
    WaitForStage(stage, 2);
    const size_t blocks = lockprof::agent::CellBlocks();
    stage = 3;
    a.join();
    b.join();
    const int64_t added = ReadTarget() - before;
    if (added == 2 * kAdds) return 0;
    WriteAll(out_fd, "read " + std::to_string(added) + " of " + std::to_string(2 * kAdds) +
                         " values added; blocks " + std::to_string(blocks_at_fork) +
                         " at the fork, " + std::to_string(blocks) + " once both threads added\n");
    return 1;
  });
  parent_done = true;
  parent_thread.join();
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0) << child.output;
}

// Sibling children of one parent (a prefork server's workers) must not make
// the same sampling decisions: each child draws afresh, from a generator
// seeded with its own pid, and starts its hold countdown anew.
TEST(ForkThreadRecordsTest, ChildrenDoNotShareTheParentsRandomDraws) {
  lockprof::agent::NextRandom();  // This thread's generator is seeded.
  lockprof::agent::tls_state.hold_started = true;
  lockprof::agent::tls_state.hold_countdown = 12345;
  std::set<std::string> draws;
  for (int child = 0; child < 3; ++child) {
    const auto r = RunInForkedChild([](int out) {
      const auto& ts = lockprof::agent::tls_state;
      std::string line = std::to_string(ts.hold_countdown) + (ts.hold_started ? "s" : "n");
      for (int i = 0; i < 4; ++i) line += " " + std::to_string(lockprof::agent::NextRandom());
      return WriteAll(out, line) ? 0 : 1;
    });
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.rfind("0n ", 0), 0u) << "the countdown starts anew: " << r.output;
    draws.insert(r.output);
  }
  EXPECT_EQ(draws.size(), 3u) << "three children drew the same numbers";
}

}  // namespace
