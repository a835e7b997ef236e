// lockprof::CowPtr<T>: readers never see a torn value and never wait for a
// writer, no update is lost, retired values are freed, and writer-writer
// contention is in the mutex profile under the CowPtr's name.
#include "lockprof/primitives/cow_ptr.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "lockprof/primitives/internal/snapshot_slot.h"
#include "test_util.h"

namespace {

using lockprof::testing::FetchProfile;
using lockprof::testing::SamplesForLock;
using lockprof::testing::ScopedRates;
using lockprof::testing::StackFunctions;

// Every field equals `version`; a reader that sees otherwise saw a torn value.
struct Quad {
  int64_t version = 0;
  int64_t a = 0, b = 0, c = 0;
  std::vector<int64_t> many = std::vector<int64_t>(16, 0);

  Quad Next() const {
    Quad q;
    q.version = q.a = q.b = q.c = version + 1;
    q.many.assign(many.size(), version + 1);
    return q;
  }
  bool Consistent() const {
    if (a != version || b != version || c != version) return false;
    for (int64_t m : many) {
      if (m != version) return false;
    }
    return true;
  }
};

// Counts live instances, to check that retired snapshots are freed.
struct Tracked {
  static std::atomic<int> live;
  int value = 0;
  Tracked() { ++live; }
  explicit Tracked(int v) : value(v) { ++live; }
  Tracked(const Tracked& o) : value(o.value) { ++live; }
  ~Tracked() { --live; }
};
std::atomic<int> Tracked::live{0};

// Writers keep updating until the readers have read plenty, so reads and
// writes surely interleave.
// A heap that tags the top byte of its pointers (AArch64 with memory
// tagging, HWASan) gets each Node back through the pointer `new` returned,
// tag included (the hardware checks it), not through an untagged one; and
// the reader count above bit 48 leaves it alone. Before, such a heap made
// the first store abort ("does not fit in 48 bits").
TEST(CowPtrTest, TaggedHeapPointersSurviveTheSlotsWord) {
  using Slot = lockprof::internal::SnapshotSlot<int>;
  for (const uintptr_t address : {uintptr_t{0x00007f12345678'00}, uintptr_t{0x0b007f12345678'00},
                                  uintptr_t{0xff00aaaaaaaaaa'00}, uintptr_t{0x0000000000001'000}}) {
    const uint64_t word = Slot::PackAddress(reinterpret_cast<void*>(address));
    EXPECT_EQ(word >> 48, 0u) << std::hex << address;    // Room for the readers.
    const uint64_t pinned = word + (uint64_t{3} << 48);  // Three readers.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(Slot::UnpackAddress(pinned)), address)
        << std::hex << address;
  }
  EXPECT_DEATH(Slot::PackAddress(reinterpret_cast<void*>(uintptr_t{0x0001000000000000})),
               "does not fit in 48 bits");
}

TEST(CowPtrTest, ReadersNeverSeeATornValue) {
  lockprof::CowPtr<Quad> cow{"test.quad"};
  constexpr int kWriters = 2, kReaders = 3, kMinUpdates = 5000, kMinReads = 20000;
  std::atomic<int> writers_left{kWriters};
  std::atomic<int64_t> torn{0}, backwards{0}, reads{0}, updates{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < kMinUpdates || reads.load() < kMinReads; ++i) {
        cow.Update([](const Quad& q) { return q.Next(); });
        updates.fetch_add(1);
      }
      writers_left.fetch_sub(1);
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&] {
      int64_t last = 0;
      do {
        std::shared_ptr<const Quad> q = cow.Load();
        if (!q->Consistent()) torn.fetch_add(1);
        if (q->version < last) backwards.fetch_add(1);
        last = q->version;
        reads.fetch_add(1);
      } while (writers_left.load() > 0);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(backwards.load(), 0);
  EXPECT_GE(reads.load(), kMinReads);
  // Writers are serialised: no update is lost.
  EXPECT_EQ(cow.Load()->version, updates.load());
  EXPECT_TRUE(cow.Load()->Consistent());
}

TEST(CowPtrTest, SnapshotsOutliveUpdates) {
  lockprof::CowPtr<Tracked> cow("test.tracked", Tracked(1));
  std::shared_ptr<const Tracked> old = cow.Load();
  cow.Store(Tracked(2));
  cow.Update([](const Tracked& t) { return Tracked(t.value * 10); });
  EXPECT_EQ(old->value, 1);
  EXPECT_EQ(cow.Load()->value, 20);
  EXPECT_STREQ(cow.name(), "test.tracked");
}

TEST(CowPtrTest, RetiredValuesAreFreed) {
  ASSERT_EQ(Tracked::live.load(), 0);
  {
    lockprof::CowPtr<Tracked> cow;
    std::vector<std::thread> threads;
    std::atomic<bool> stop{false};
    std::atomic<int> bad_reads{0};
    for (int r = 0; r < 2; ++r) {
      threads.emplace_back([&] {
        // Each reader sees the updates in order: never a value older than
        // one it saw, never one not yet written.
        int last = 0;
        do {
          const int v = cow.Load()->value;
          if (v < last || v > 20000) bad_reads.fetch_add(1);
          last = v;
        } while (!stop.load());
      });
    }
    for (int i = 0; i < 20000; ++i)
      cow.Update([](const Tracked& t) { return Tracked(t.value + 1); });
    stop.store(true);
    for (auto& t : threads) t.join();
    EXPECT_EQ(bad_reads.load(), 0);
    EXPECT_EQ(cow.Load()->value, 20000);
    EXPECT_EQ(Tracked::live.load(), 1);  // Only the current value.
  }
  EXPECT_EQ(Tracked::live.load(), 0);
}

// A reader calls Load while a writer is inside its update function; the
// writer waits (bounded) for that reader. Readers waiting for writers would
// make the writer time out instead.
TEST(CowPtrTest, ReadersDoNotWaitForWriters) {
  lockprof::CowPtr<int> cow("test.nowait", 1);
  std::atomic<bool> in_fn{false}, reader_done{false};
  bool writer_saw_reader = false;
  std::thread writer([&] {
    cow.Update([&](const int& v) {
      in_fn.store(true);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (!reader_done.load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      writer_saw_reader = reader_done.load();
      return v + 1;
    });
  });
  while (!in_fn.load()) std::this_thread::yield();
  EXPECT_EQ(*cow.Load(), 1);  // The old value, while the new one is built.
  reader_done.store(true);
  writer.join();
  EXPECT_TRUE(writer_saw_reader);
  EXPECT_EQ(*cow.Load(), 2);
}

// Two writers whose update functions take ~1 ms each: one waits for the
// other, and the mutex profile charges the CowPtr's writer lock.
ABSL_ATTRIBUTE_NOINLINE void CowWriterHotSpot(lockprof::CowPtr<int>& cow, int n) {
  for (int i = 0; i < n; ++i) {
    cow.Update([](const int& v) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return v + 1;
    });
  }
}

TEST(CowPtrTest, WriterContentionIsInTheMutexProfile) {
  ScopedRates rates(1, ScopedRates::kKeep, ScopedRates::kKeep);
  lockprof::CowPtr<int> cow{"test.cow_writers"};
  std::thread a([&] { CowWriterHotSpot(cow, 50); });
  std::thread b([&] { CowWriterHotSpot(cow, 50); });
  a.join();
  b.join();
  EXPECT_EQ(*cow.Load(), 100);

  auto profile = FetchProfile("mutex");
  int64_t delay = 0;
  for (const auto* s : SamplesForLock(profile, "test.cow_writers")) {
    auto names = StackFunctions(profile, *s);
    ASSERT_FALSE(names.empty());
    EXPECT_NE(names[0].find("CowWriterHotSpot"), std::string::npos) << names[0];
    delay += s->value(1);
  }
  // 100 updates of >= 1 ms by two writers that overlap: whichever way the
  // lock alternates, the one not holding it waits most of the ~100 ms.
  EXPECT_GT(delay, 10'000'000);
}

}  // namespace
