#include "lockprof/agent/tables/stack_table.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "lifecycle_util.h"

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

// This process's address space in KiB (/proc/self/status VmSize).
long VirtualKiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmSize:", 0) == 0) return std::atol(line.c_str() + 7);
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

// A table whose slots cannot be mapped (the process at its RLIMIT_AS, or
// overcommit refused) counts each event it loses as dropped, so that
// lockprof_profile_samples_dropped_total shows it (it lost them without a
// trace), and maps its slots once it can again.
TEST(StackTableTest, EventsLostForWantOfMemoryAreCountedDropped) {
  const auto child = testing::RunInForkedChild(
      [](int out_fd) {
        StackTable t(StackTable::kMaxCapacity);  // About 400 MiB of address space.
        // Room for this process's own allocations, not for the table's.
        rlimit as{};
        if (getrlimit(RLIMIT_AS, &as) != 0) return 2;
        const rlimit tight{size_t(VirtualKiB()) * 1024 + (size_t{64} << 20), as.rlim_max};
        if (setrlimit(RLIMIT_AS, &tight) != 0) return 3;
        for (uintptr_t i = 0; i < 1000; ++i) t.Add(Stack(i + 1, 9), EventTags{}, nullptr, 1, 1);
        const std::string lost =
            std::to_string(t.dropped()) + " dropped, " + std::to_string(t.size()) + " stored";
        if (setrlimit(RLIMIT_AS, &as) != 0) return 4;
        t.Add(Stack(1, 9), EventTags{}, nullptr, 1, 1);  // Within a second: no new try.
        std::this_thread::sleep_for(std::chrono::milliseconds(1100));
        t.Add(Stack(1, 9), EventTags{}, nullptr, 1, 1);
        const std::string after =
            std::to_string(t.dropped()) + " dropped, " + std::to_string(t.size()) + " stored";
        testing::WriteAll(out_fd, lost + "; then " + after);
        return lost == "1000 dropped, 0 stored" && after == "1001 dropped, 1 stored" ? 0 : 1;
      },
      60);
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0) << child.output << " (2-4: the limit could not be set)";
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
