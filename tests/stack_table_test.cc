#include "lockprof/agent/tables/stack_table.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace lockprof::agent {
namespace {

StackTrace Stack(uintptr_t a, uintptr_t b) {
  StackTrace s;
  s.depth = 2;
  s.pcs[0] = a;
  s.pcs[1] = b;
  return s;
}

int64_t Total(const StackTable& t, int index) {
  std::vector<SlotValues> v;
  t.Snapshot(&v);
  int64_t sum = 0;
  for (const auto& s : v) sum += s.values[index];
  return sum;
}

TEST(StackTableTest, SameKeyAccumulatesDistinctKeysSeparate) {
  StackTable t(64);
  EXPECT_EQ(t.memory_bytes(), 0u);  // Nothing allocated before first use.
  t.Add(Stack(1, 2), EventTags{"a"}, nullptr, 1, 10);
  t.Add(Stack(1, 2), EventTags{"a"}, nullptr, 2, 20);
  t.Add(Stack(1, 2), EventTags{"b"}, nullptr, 1, 5);
  t.Add(Stack(1, 3), EventTags{"a"}, nullptr, 1, 7);
  std::vector<SlotValues> v;
  t.Snapshot(&v);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(Total(t, 0), 5);
  EXPECT_EQ(Total(t, 1), 42);
  EXPECT_GT(t.memory_bytes(), 0u);
}

// This process's resident memory in KiB (/proc/self/status VmRSS).
long ResidentKiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// A reader visits the slots in use, not the whole table: the largest
// capacity, nearly empty, costs its address space but not its memory
// (reading every slot committed 380 MiB of it, and took a second).
TEST(StackTableTest, ReadingALargeTableTouchesOnlyItsKeys) {
  StackTable t(StackTable::kMaxCapacity);
  t.Add(Stack(1, 2), EventTags{"a"}, nullptr, 1, 10);
  t.Add(Stack(3, 4), EventTags{"b"}, nullptr, 2, 20);
  const long before = ResidentKiB();
  std::vector<SlotValues> v;
  for (int i = 0; i < 3; ++i) {
    v.clear();
    t.Snapshot(&v);
  }
  EXPECT_EQ(v.size(), 2u);
  EXPECT_LT(ResidentKiB() - before, 16 * 1024);
  EXPECT_GT(t.memory_bytes(), StackTable::kMaxCapacity * 300);
}

TEST(StackTableTest, FullTableFoldsNewKeysIntoOverflowAndKeepsOldOnes) {
  StackTable t(16);
  for (uintptr_t i = 0; i < 100; ++i) t.Add(Stack(i + 1, 99), EventTags{}, nullptr, 1, 1);
  EXPECT_LE(t.size(), 16u);
  EXPECT_EQ(t.dropped(), 100 - t.size());
  const size_t bytes = t.memory_bytes();
  // Existing keys keep accumulating once full.
  t.Add(Stack(1, 99), EventTags{}, nullptr, 1000, 1000);
  std::vector<SlotValues> v;
  t.Snapshot(&v);
  bool found_old = false, found_overflow = false;
  for (const auto& s : v) {
    if (s.overflow) {
      found_overflow = true;
      EXPECT_EQ(s.values[0], int64_t(t.dropped()));
    } else if (s.key->pcs[0] == 1) {
      found_old = true;
      EXPECT_EQ(s.values[0], 1001);
    }
  }
  EXPECT_TRUE(found_old);
  EXPECT_TRUE(found_overflow);
  EXPECT_EQ(Total(t, 0), 100 + 1000);  // Nothing recorded is lost.
  EXPECT_EQ(t.memory_bytes(), bytes);  // Memory stays bounded.
}

TEST(StackTableTest, ConcurrentAddsLoseNothing) {
  StackTable t(256);
  constexpr int kThreads = 4, kIters = 20000;
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&t, th] {
      for (int i = 0; i < kIters; ++i) {
        t.Add(Stack(uintptr_t(i % 50) + 1, uintptr_t(th % 2) + 1), EventTags{}, nullptr, 1, 3);
      }
    });
  }
  std::vector<SlotValues> v;
  while (Total(t, 0) < kThreads * kIters / 2) t.Snapshot(&v);  // Read while writing.
  for (auto& th : threads) th.join();
  EXPECT_EQ(Total(t, 0), int64_t{kThreads} * kIters);
  EXPECT_EQ(Total(t, 1), int64_t{kThreads} * kIters * 3);
  EXPECT_EQ(t.dropped(), 0u);
}

}  // namespace
}  // namespace lockprof::agent
