// Per-thread value cells (agent/tables/thread_cells.h): every value added
// is read exactly once, while threads add, rebind their cells, exit and
// hand their blocks on; and a value is readable at once, without its thread
// recording again.
#include "lockprof/agent/tables/thread_cells.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "lockprof/agent/tables/stack_table.h"

namespace lockprof::agent {
namespace {

// More targets than a block has cells, so that threads miss and rebind.
constexpr int kTargets = 3 * kCellsPerBlock;

struct Target {
  std::atomic<int64_t> values[2];
};
// Static: cells stay bound to their targets for good.
Target g_targets[kTargets];

void MoveToTarget(void* target, const int64_t* values) {
  auto* t = static_cast<Target*>(target);
  t->values[0].fetch_add(values[0], std::memory_order_relaxed);
  t->values[1].fetch_add(values[1], std::memory_order_relaxed);
}

// Every target's two values, cells included.
std::vector<int64_t> ReadTargets() {
  std::vector<int64_t> v(2 * kTargets);
  std::vector<CellValues> cells;
  ReadWithCells(
      &g_targets[0], &g_targets[kTargets],
      [&] {
        for (int t = 0; t < kTargets; ++t) {
          v[2 * t] = g_targets[t].values[0].load(std::memory_order_relaxed);
          v[2 * t + 1] = g_targets[t].values[1].load(std::memory_order_relaxed);
        }
      },
      &cells);
  for (const CellValues& c : cells) {
    const auto t = size_t(static_cast<const Target*>(c.target) - g_targets);
    v[2 * t] += c.values[0];
    v[2 * t + 1] += c.values[1];
  }
  return v;
}

void Add(int target, int64_t n) { AddToCell(&g_targets[target], MoveToTarget, 0, 1, 1, n); }

TEST(ThreadCellsTest, EveryValueIsReadOnceWhileThreadsRebindExitAndReuseBlocks) {
  const std::vector<int64_t> start = ReadTargets();
  constexpr int kWaves = 4, kThreads = 4, kAdds = 40'000;
  std::atomic<bool> done{false};
  // A reader throughout: no target ever goes down (a value read twice and
  // then once, or lost for a while, would show as a drop).
  int64_t reads = 0, drops = 0;
  std::thread reader([&] {
    std::vector<int64_t> last = start;
    while (!done.load()) {
      const std::vector<int64_t> now = ReadTargets();
      for (size_t k = 0; k < now.size(); ++k) drops += now[k] < last[k];
      last = now;
      ++reads;
    }
  });
  for (int wave = 0; wave < kWaves; ++wave) {
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th) {
      threads.emplace_back([th, wave] {
        for (int i = 0; i < kAdds; ++i) {
          // Each thread's hot targets drift, so cells keep being rebound:
          // most adds to a few targets, the rest spread over all of them.
          const int hot = (th + wave + i / 5000) % kTargets;
          Add(i % 4 == 0 ? (i / 4 + th) % kTargets : hot, 3);
        }
      });
    }
    for (auto& t : threads) t.join();  // Their blocks go back to the pool.
  }
  done.store(true);
  reader.join();
  const std::vector<int64_t> end = ReadTargets();
  int64_t count = 0, sum = 0;
  for (int t = 0; t < kTargets; ++t) {
    count += end[2 * t] - start[2 * t];
    sum += end[2 * t + 1] - start[2 * t + 1];
  }
  EXPECT_EQ(count, int64_t{kWaves} * kThreads * kAdds);
  EXPECT_EQ(sum, 3 * int64_t{kWaves} * kThreads * kAdds);
  EXPECT_EQ(drops, 0) << "in " << reads << " reads";
  EXPECT_GT(reads, 0);
  // Blocks are reused: one per thread recording at once (and the reader's
  // and other tests' threads), not one per thread ever.
  EXPECT_LE(CellBlocks(), size_t{kThreads} + 4);
}

TEST(ThreadCellsTest, AValueIsReadableWhileItsThreadIdles) {
  std::atomic<int> phase{0};
  std::thread idle([&] {
    for (int i = 0; i < 5; ++i) Add(0, 7);
    phase.store(1);
    while (phase.load() != 2) std::this_thread::yield();
  });
  while (phase.load() != 1) std::this_thread::yield();
  const std::vector<int64_t> before = ReadTargets();
  Add(0, 100);  // This thread's own cell.
  const std::vector<int64_t> after = ReadTargets();
  EXPECT_EQ(after[1] - before[1], 100);
  phase.store(2);
  idle.join();
  // The idle thread's five adds were counted before it exited.
  const std::vector<int64_t> end = ReadTargets();
  EXPECT_EQ(end[1], after[1]);
  EXPECT_GE(before[1], 35);
}

// An agent-style table (never destroyed) with cells: concurrent adds of more
// keys than a block has cells lose nothing and count nothing twice.
TEST(ThreadCellsTest, StackTableWithCellsLosesNothing) {
  static StackTable table(256, StackTable::Values::kPerThreadCells);
  constexpr int kThreads = 4, kIters = 20'000, kKeys = 50;
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([th] {
      StackTrace s;
      s.depth = 2;
      for (int i = 0; i < kIters; ++i) {
        s.pcs[0] = uintptr_t((i / 100 + th) % kKeys) + 1;
        s.pcs[1] = 7;
        table.Add(s, EventTags{}, nullptr, 1, 3);
      }
    });
  }
  auto total = [](int index) {
    std::vector<SlotValues> v;
    table.Snapshot(&v);
    int64_t sum = 0;
    for (const auto& s : v) sum += s.values[index];
    return sum;
  };
  int64_t last = 0;
  while (last < kThreads * kIters / 2) {  // Read while writing: never down.
    const int64_t now = total(0);
    ASSERT_GE(now, last);
    last = now;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(total(0), int64_t{kThreads} * kIters);
  EXPECT_EQ(total(1), int64_t{kThreads} * kIters * 3);
  // (Racing first adds of one key may store it twice: readers merge them.)
  std::vector<SlotValues> v;
  table.Snapshot(&v);
  std::set<uintptr_t> keys;
  for (const auto& s : v) keys.insert(s.key->pcs[0]);
  EXPECT_EQ(keys.size(), size_t{kKeys});
}

}  // namespace
}  // namespace lockprof::agent
