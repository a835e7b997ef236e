// lockprof::SharedMutex in the profiles: both kinds of waiting, charged
// exactly to the release that ended them and to each waiter, split by the
// mode label; case study 2 (a slow writer under a read-mostly lock) end to
// end through `go tool pprof`.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"
#include "wait_truth.h"

namespace {

using lockprof::testing::FetchProfile;
using lockprof::testing::FetchProfileToFile;
using lockprof::testing::GoPprof;
using lockprof::testing::LabelValue;
using lockprof::testing::NowNanos;
using lockprof::testing::ProfileDelta;
using lockprof::testing::ScopedRates;
using lockprof::testing::StackFunctions;
using lockprof::testing::TopFunction;
using lockprof::testing::WaiterTimes;
using lockprof::testing::WaitsUntilAcquired;
using lockprof::testing::WaitsUntilLetIn;

void SleepNs(int64_t ns) { std::this_thread::sleep_for(std::chrono::nanoseconds(ns)); }

ABSL_ATTRIBUTE_NOINLINE void ExactWriterSection(lockprof::SharedMutex& mu, int64_t hold_ns,
                                                std::atomic<bool>& held, int64_t* unlock_at) {
  mu.lock();
  held.store(true);
  SleepNs(hold_ns);
  *unlock_at = NowNanos();
  mu.unlock();
}

ABSL_ATTRIBUTE_NOINLINE void ExactReaderSection(lockprof::SharedMutex& mu, int64_t hold_ns,
                                                std::atomic<bool>& held, int64_t* unlock_at) {
  mu.lock_shared();
  held.store(true);
  SleepNs(hold_ns);
  *unlock_at = NowNanos();
  mu.unlock_shared();
}

// Waiters: record when they asked, got in and let the next in.
ABSL_ATTRIBUTE_NOINLINE void ExactReaderWaits(lockprof::SharedMutex& mu, WaiterTimes* t) {
  t->start = NowNanos();
  mu.lock_shared();
  t->acquired = NowNanos();
  t->released = NowNanos();
  mu.unlock_shared();
}

ABSL_ATTRIBUTE_NOINLINE void ExactWriterWaits(lockprof::SharedMutex& mu, WaiterTimes* t) {
  t->start = NowNanos();
  mu.lock();
  t->acquired = NowNanos();
  t->released = NowNanos();
  mu.unlock();
}

struct Truth {
  int64_t charged = 0;         // What the holder's release owes (mutex profile).
  int64_t waited = 0;          // What the waiters waited (block profile).
  int64_t until_acquired = 0;  // The waits to the acquisitions: waited's upper bound.
};

// Rounds of: a holder holds for kHoldNs (writer or reader), kWaiters
// threads (readers or writers) wait for it.
template <typename Holder, typename Waiter>
Truth RunRounds(lockprof::SharedMutex& mu, Holder holder_section, Waiter waiter, int waiters) {
  constexpr int kRounds = 6;
  constexpr int64_t kHoldNs = 30'000'000;
  const bool exclusive = waiter == ExactWriterWaits;
  Truth truth;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> held{false};
    int64_t unlock_at = 0;
    std::vector<WaiterTimes> times(static_cast<size_t>(waiters));
    std::thread holder([&] { holder_section(mu, kHoldNs, held, &unlock_at); });
    std::vector<std::thread> threads;
    for (int w = 0; w < waiters; ++w) {
      threads.emplace_back([&, w] {
        while (!held.load()) std::this_thread::yield();
        waiter(mu, &times[size_t(w)]);
      });
    }
    holder.join();
    for (auto& t : threads) t.join();
    for (const WaiterTimes& t : times) truth.charged += std::max<int64_t>(0, unlock_at - t.start);
    truth.waited += WaitsUntilLetIn(unlock_at, times, exclusive);
    truth.until_acquired += WaitsUntilAcquired(times);
  }
  EXPECT_GT(truth.charged, kRounds * waiters * kHoldNs * 8 / 10);
  return truth;
}

// Runs the rounds on `mu` and checks both profiles against the truth: the
// holder's section is charged the waiting, the waiters' function has it, all
// of it labelled with the lock's name and `mode` (and none with the other).
template <typename Holder, typename Waiter>
void ExpectExact(lockprof::SharedMutex& mu, const std::string& mode, Holder holder,
                 const std::string& holder_fn, Waiter waiter, const std::string& waiter_fn,
                 int waiters) {
  ScopedRates rates(1, 1, 0);
  const std::string other = mode == "read" ? "write" : "read";
  ProfileDelta charged("mutex", 1, holder_fn, {{"lock", mu.name()}, {"mode", mode}});
  ProfileDelta waited("block", 1, waiter_fn, {{"lock", mu.name()}, {"mode", mode}});
  ProfileDelta mislabelled("mutex", 1, "", {{"lock", mu.name()}, {"mode", other}});
  const Truth truth = RunRounds(mu, holder, waiter, waiters);
  EXPECT_NEAR(double(charged.Get()), double(truth.charged), 0.05 * double(truth.charged));
  const int64_t waited_got = waited.Get();
  EXPECT_NEAR(double(waited_got), double(truth.waited), 0.05 * double(truth.waited));
  EXPECT_LE(waited_got, truth.until_acquired);
  EXPECT_EQ(mislabelled.Get(), 0);
}

// A writer holds while readers wait: the writer's unlock owes the readers'
// wait (mode=read); each reader's wait is in the block profile.
TEST(SharedMutexProfileTest, WriterUnlockIsChargedTheReadersWaitExactly) {
  lockprof::SharedMutex mu{"exact.readers.wait"};
  ExpectExact(mu, "read", ExactWriterSection, "ExactWriterSection", ExactReaderWaits,
              "ExactReaderWaits", 3);
}

// A reader holds while a writer waits: the reader's unlock_shared — the
// last reader out, which lets the writer in — owes the writer's wait
// (mode=write).
TEST(SharedMutexProfileTest, LastReaderIsChargedTheWritersWaitExactly) {
  lockprof::SharedMutex mu{"exact.writer.wait"};
  ExpectExact(mu, "write", ExactReaderSection, "ExactReaderSection", ExactWriterWaits,
              "ExactWriterWaits", 1);
}

// Writers waiting for a writer: its unlock owes their wait (mode=write).
// (The second writer in also waits, briefly, for the first: that is
// charged to ExactWriterWaits, and is in the truth's waits but not in its
// charges, which count the holder's section only.)
TEST(SharedMutexProfileTest, WriterUnlockIsChargedTheWritersWaitExactly) {
  lockprof::SharedMutex mu{"exact.writers.wait"};
  ExpectExact(mu, "write", ExactWriterSection, "ExactWriterSection", ExactWriterWaits,
              "ExactWriterWaits", 2);
}

// One lock, both kinds of waiting: `go tool pprof -tagfocus=mode=...`
// splits them — readers' waits charged to the writer's section, the
// writer's wait to the reader's section, and the waiters in the block
// profile likewise.
TEST(SharedMutexProfileTest, GoPprofTagfocusSplitsReadAndWriteWaits) {
  ScopedRates rates(1, 1, 0);
  lockprof::SharedMutex mu{"mixed.waits"};
  RunRounds(mu, ExactWriterSection, ExactReaderWaits, 2);
  RunRounds(mu, ExactReaderSection, ExactWriterWaits, 1);
  // -tagignore drops the other tests' locks (when this binary runs whole).
  const std::string only = " -tagignore=lock=exact -focus=Exact -sample_index=delay -top ";
  const std::string mutex_file = FetchProfileToFile("mutex");
  const std::string block_file = FetchProfileToFile("block");
  struct Case {
    std::string file, mode, top, absent;
  } cases[] = {
      {mutex_file, "read", "ExactWriterSection", "ExactReaderSection"},
      {mutex_file, "write", "ExactReaderSection", "ExactWriterSection"},
      {block_file, "read", "ExactReaderWaits", "ExactWriterWaits"},
      {block_file, "write", "ExactWriterWaits", "ExactReaderWaits"},
  };
  for (const Case& c : cases) {
    int status = 0;
    const std::string out = GoPprof("-tagfocus=mode=" + c.mode + only + c.file, &status);
    ASSERT_EQ(status, 0) << out;
    EXPECT_NE(TopFunction(out).find(c.top), std::string::npos) << out;
    EXPECT_EQ(out.find(c.absent), std::string::npos) << out;
  }
  int status = 0;
  const std::string out = GoPprof("-tags -tagfocus=lock=mixed.waits " + mutex_file, &status);
  EXPECT_NE(out.find("): mixed.waits"), std::string::npos) << out;
  EXPECT_NE(out.find("): read"), std::string::npos) << out;
  EXPECT_NE(out.find("): write"), std::string::npos) << out;
}

// Case study 2: a read-mostly configuration, read constantly by several
// threads; a writer occasionally does slow work while holding the lock.
// Every reader spikes during each write; the profiles must say why.
lockprof::SharedMutex g_config_mu{"case.study.2"};
int64_t g_config_version = 0;

struct Interval {
  int64_t from, to;
};

// The writer's critical section: the mutex profile must name it. Appends
// the span during which it held the lock.
ABSL_ATTRIBUTE_NOINLINE void CaseStudySlowWrite(int64_t work_ns, std::vector<Interval>* held) {
  std::unique_lock<lockprof::SharedMutex> lock(g_config_mu);
  const int64_t start = NowNanos();
  SleepNs(work_ns);  // The slow part, done under the lock (the bug).
  ++g_config_version;
  held->push_back({start, NowNanos()});
}

// A reader: the block profile must name it.
ABSL_ATTRIBUTE_NOINLINE int64_t CaseStudyRead() {
  std::shared_lock<lockprof::SharedMutex> lock(g_config_mu);
  return g_config_version;
}

TEST(SharedMutexProfileTest, CaseStudy2SlowWriterMakesEveryReaderSpike) {
  ScopedRates rates(1, 1, 1);
  constexpr int kReaders = 3, kWrites = 15;
  constexpr int64_t kWorkNs = 5'000'000;
  const std::vector<std::pair<std::string, std::string>> read = {{"lock", "case.study.2"},
                                                                 {"mode", "read"}};
  std::atomic<bool> done{false};
  std::vector<std::vector<Interval>> reads(kReaders);  // Each CaseStudyRead call.
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      while (!done.load(std::memory_order_relaxed)) {
        const int64_t start = NowNanos();
        CaseStudyRead();
        reads[size_t(r)].push_back({start, NowNanos()});
        SleepNs(50'000);  // Read-mostly: the CPUs stay free for the writer.
      }
    });
  }
  // One write first, outside the measurement: under TSan a thread's first
  // wait starts milliseconds after its call (the sanitizer's first touches),
  // which the truth below would count as waiting; in a release build it is
  // exact either way.
  std::vector<Interval> writes, warm_up;
  SleepNs(kWorkNs);
  CaseStudySlowWrite(kWorkNs, &warm_up);
  SleepNs(kWorkNs);  // The readers record their waits at their releases.
  ProfileDelta charged("mutex", 1, "CaseStudySlowWrite", read);
  ProfileDelta read_waits("block", 1, "CaseStudyRead", read);
  ProfileDelta read_holds("hold", 0, "CaseStudyRead", read);
  ProfileDelta write_holds("hold", 1, "CaseStudySlowWrite",
                           {{"lock", "case.study.2"}, {"mode", "write"}});
  for (int i = 0; i < kWrites; ++i) {
    SleepNs(kWorkNs);
    CaseStudySlowWrite(kWorkNs, &writes);
  }
  done.store(true);
  for (auto& t : readers) t.join();

  // Ground truth. The writer's unlock owes each reader's wait during its
  // hold: the overlap of the reader's call with the hold. A reader waits at
  // least that long, and at most as long as its calls took.
  int64_t overlap = 0, read_total = 0, held_total = 0;
  for (const Interval& w : writes) held_total += w.to - w.from;
  for (int r = 0; r < kReaders; ++r) {
    int64_t worst = 0;
    for (const Interval& c : reads[size_t(r)]) {
      read_total += c.to - c.from;
      worst = std::max(worst, c.to - c.from);
      for (const Interval& w : writes) {
        overlap += std::max<int64_t>(0, std::min(c.to, w.to) - std::max(c.from, w.from));
      }
    }
    EXPECT_GT(worst, kWorkNs / 2) << "reader " << r << " never spiked";
  }
  // Readers spike: they wait out most of every write.
  EXPECT_GT(overlap, kReaders * held_total / 2);

  // Mutex profile: the heaviest sample of this lock is the writer's
  // critical section, charged for readers' waiting.
  auto mutex = FetchProfile("mutex");
  const perftools::profiles::Sample* top = nullptr;
  for (const auto& s : mutex.sample()) {
    if (LabelValue(mutex, s, "lock") != "case.study.2") continue;
    if (top == nullptr || s.value(1) > top->value(1)) top = &s;
  }
  ASSERT_NE(top, nullptr);
  ASSERT_FALSE(StackFunctions(mutex, *top).empty());
  EXPECT_NE(StackFunctions(mutex, *top)[0].find("CaseStudySlowWrite"), std::string::npos);
  EXPECT_EQ(LabelValue(mutex, *top, "mode"), "read");
  EXPECT_NEAR(double(charged.Get()), double(overlap), 0.05 * double(overlap));
  // Block profile: the readers' waits, mode=read.
  EXPECT_GE(double(read_waits.Get()), 0.95 * double(overlap));
  EXPECT_LE(read_waits.Get(), read_total);
  // Hold profile: the write holds, exactly (every hold sampled at rate 1);
  // read holds are there too, labelled mode=read.
  EXPECT_NEAR(double(write_holds.Get()), double(held_total), 0.05 * double(held_total));
  EXPECT_GT(read_holds.Get(), kWrites);

  // The same through go tool pprof: -tagfocus isolates the lock, and splits
  // read waits from write waits.
  int status = 0;
  const std::string mutex_file = FetchProfileToFile("mutex");
  std::string out =
      GoPprof("-top -sample_index=delay -tagfocus=lock=case.study.2 " + mutex_file, &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(TopFunction(out).find("CaseStudySlowWrite"), std::string::npos) << out;
  out = GoPprof("-tags -tagfocus=lock=case.study.2 " + mutex_file, &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("): case.study.2"), std::string::npos) << out;
  EXPECT_NE(out.find("): read"), std::string::npos) << out;
  const std::string block_file = FetchProfileToFile("block");
  out = GoPprof("-top -sample_index=delay -tagfocus=mode=read -focus=CaseStudy " + block_file,
                &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(TopFunction(out).find("CaseStudyRead"), std::string::npos) << out;
}

}  // namespace
