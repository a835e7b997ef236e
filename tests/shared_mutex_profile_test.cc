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

namespace {

using lockprof::testing::FetchProfile;
using lockprof::testing::FetchProfileToFile;
using lockprof::testing::GoPprof;
using lockprof::testing::LabelValue;
using lockprof::testing::ScopedRates;
using lockprof::testing::StackFunctions;
using lockprof::testing::SumValuesWithLabels;
using lockprof::testing::TopFunction;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SleepNs(int64_t ns) { std::this_thread::sleep_for(std::chrono::nanoseconds(ns)); }

ABSL_ATTRIBUTE_NOINLINE void ExactWriterSection(lockprof::SharedMutex& mu, int64_t hold_ns,
                                                std::atomic<bool>& held, int64_t* unlock_at) {
  mu.lock();
  held.store(true);
  SleepNs(hold_ns);
  *unlock_at = Now();
  mu.unlock();
}

ABSL_ATTRIBUTE_NOINLINE void ExactReaderSection(lockprof::SharedMutex& mu, int64_t hold_ns,
                                                std::atomic<bool>& held, int64_t* unlock_at) {
  mu.lock_shared();
  held.store(true);
  SleepNs(hold_ns);
  *unlock_at = Now();
  mu.unlock_shared();
}

// Waiters: return when they got in; *start is when they asked.
ABSL_ATTRIBUTE_NOINLINE int64_t ExactReaderWaits(lockprof::SharedMutex& mu, int64_t* start) {
  *start = Now();
  mu.lock_shared();
  const int64_t acquired = Now();
  mu.unlock_shared();
  return acquired;
}

ABSL_ATTRIBUTE_NOINLINE int64_t ExactWriterWaits(lockprof::SharedMutex& mu, int64_t* start) {
  *start = Now();
  mu.lock();
  const int64_t acquired = Now();
  mu.unlock();
  return acquired;
}

struct Truth {
  int64_t charged = 0;  // What the holder's release owes (mutex profile).
  int64_t waited = 0;   // What the waiters waited (block profile).
};

// Rounds of: a holder holds for kHoldNs (writer or reader), kWaiters
// threads (readers or writers) wait for it.
template <typename Holder, typename Waiter>
Truth RunRounds(lockprof::SharedMutex& mu, Holder holder_section, Waiter waiter, int waiters) {
  constexpr int kRounds = 6;
  constexpr int64_t kHoldNs = 30'000'000;
  Truth truth;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<bool> held{false};
    int64_t unlock_at = 0;
    std::vector<int64_t> starts(static_cast<size_t>(waiters)), acquired(starts);
    std::thread holder([&] { holder_section(mu, kHoldNs, held, &unlock_at); });
    std::vector<std::thread> threads;
    for (int w = 0; w < waiters; ++w) {
      threads.emplace_back([&, w] {
        while (!held.load()) std::this_thread::yield();
        acquired[size_t(w)] = waiter(mu, &starts[size_t(w)]);
      });
    }
    holder.join();
    for (auto& t : threads) t.join();
    for (size_t w = 0; w < size_t(waiters); ++w) {
      truth.charged += std::max<int64_t>(0, unlock_at - starts[w]);
      truth.waited += acquired[w] - starts[w];
    }
  }
  EXPECT_GT(truth.charged, kRounds * waiters * kHoldNs * 8 / 10);
  return truth;
}

// A writer holds while readers wait: the writer's unlock owes the readers'
// wait, labelled mode=read; each reader's wait is in the block profile,
// mode=read.
TEST(SharedMutexProfileTest, WriterUnlockIsChargedTheReadersWaitExactly) {
  ScopedRates rates(1, 1, 0);
  lockprof::SharedMutex mu{"exact.readers.wait"};
  const Truth truth = RunRounds(mu, ExactWriterSection, ExactReaderWaits, 3);
  const std::vector<std::pair<std::string, std::string>> labels = {{"lock", "exact.readers.wait"},
                                                                   {"mode", "read"}};
  const int64_t charged =
      SumValuesWithLabels(FetchProfile("mutex"), 1, "ExactWriterSection", labels);
  const int64_t waited = SumValuesWithLabels(FetchProfile("block"), 1, "ExactReaderWaits", labels);
  EXPECT_NEAR(double(charged), double(truth.charged), 0.05 * double(truth.charged));
  EXPECT_NEAR(double(waited), double(truth.waited), 0.05 * double(truth.waited));
  // Nothing of it is labelled as a writer's wait.
  EXPECT_EQ(SumValuesWithLabels(FetchProfile("mutex"), 1, "",
                                {{"lock", "exact.readers.wait"}, {"mode", "write"}}),
            0);
}

// A reader holds while a writer waits: the reader's unlock_shared — the
// last reader out, which lets the writer in — owes the writer's wait,
// labelled mode=write.
TEST(SharedMutexProfileTest, LastReaderIsChargedTheWritersWaitExactly) {
  ScopedRates rates(1, 1, 0);
  lockprof::SharedMutex mu{"exact.writer.wait"};
  const Truth truth = RunRounds(mu, ExactReaderSection, ExactWriterWaits, 1);
  const std::vector<std::pair<std::string, std::string>> labels = {{"lock", "exact.writer.wait"},
                                                                   {"mode", "write"}};
  const int64_t charged =
      SumValuesWithLabels(FetchProfile("mutex"), 1, "ExactReaderSection", labels);
  const int64_t waited = SumValuesWithLabels(FetchProfile("block"), 1, "ExactWriterWaits", labels);
  EXPECT_NEAR(double(charged), double(truth.charged), 0.05 * double(truth.charged));
  EXPECT_NEAR(double(waited), double(truth.waited), 0.05 * double(truth.waited));
}

// Writers waiting for a writer: its unlock owes their wait, mode=write.
TEST(SharedMutexProfileTest, WriterUnlockIsChargedTheWritersWaitExactly) {
  ScopedRates rates(1, 1, 0);
  lockprof::SharedMutex mu{"exact.writers.wait"};
  const Truth truth = RunRounds(mu, ExactWriterSection, ExactWriterWaits, 2);
  const std::vector<std::pair<std::string, std::string>> labels = {{"lock", "exact.writers.wait"},
                                                                   {"mode", "write"}};
  // The second writer in also waits for the first: charged to the first's
  // section (ExactWriterWaits), so count the holder's section only and
  // compare with the holder's share of the truth.
  const int64_t charged =
      SumValuesWithLabels(FetchProfile("mutex"), 1, "ExactWriterSection", labels);
  EXPECT_NEAR(double(charged), double(truth.charged), 0.05 * double(truth.charged));
  const int64_t waited = SumValuesWithLabels(FetchProfile("block"), 1, "ExactWriterWaits", labels);
  EXPECT_NEAR(double(waited), double(truth.waited), 0.05 * double(truth.waited));
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

// The writer's critical section: the mutex profile must name it.
ABSL_ATTRIBUTE_NOINLINE void CaseStudySlowWrite(int64_t work_ns, int64_t* held_ns) {
  std::unique_lock<lockprof::SharedMutex> lock(g_config_mu);
  const int64_t start = Now();
  SleepNs(work_ns);  // The slow part, done under the lock (the bug).
  ++g_config_version;
  *held_ns += Now() - start;
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
  std::atomic<bool> done{false};
  // Per reader: time spent in reads that spiked, in all reads, the worst.
  std::vector<int64_t> spikes(kReaders), total(kReaders), worst(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      while (!done.load(std::memory_order_relaxed)) {
        const int64_t start = Now();
        CaseStudyRead();
        const int64_t took = Now() - start;
        total[size_t(r)] += took;
        if (took > kWorkNs / 5) spikes[size_t(r)] += took;
        worst[size_t(r)] = std::max(worst[size_t(r)], took);
        // Read-mostly, not read-only-spinning: leaves the CPUs free, so that
        // a spike is lock waiting and not a reader preempted.
        SleepNs(50'000);
      }
    });
  }
  int64_t held_ns = 0;
  for (int i = 0; i < kWrites; ++i) {
    SleepNs(kWorkNs);
    CaseStudySlowWrite(kWorkNs, &held_ns);
  }
  done.store(true);
  for (auto& t : readers) t.join();
  int64_t spike_total = 0, read_total = 0;
  for (int r = 0; r < kReaders; ++r) {
    spike_total += spikes[size_t(r)];
    read_total += total[size_t(r)];
    EXPECT_GT(worst[size_t(r)], kWorkNs / 2) << "reader " << r << " never spiked";
  }

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
  // Each reader waits out (nearly) every write: the section is charged
  // about kReaders times its hold time.
  const int64_t charged = SumValuesWithLabels(mutex, 1, "CaseStudySlowWrite",
                                              {{"lock", "case.study.2"}, {"mode", "read"}});
  EXPECT_NEAR(double(charged), double(kReaders * held_ns), 0.1 * double(kReaders * held_ns));
  // Block profile: the readers' waits, mode=read, account for the spikes
  // (and are no more than the time readers spent reading at all).
  const int64_t read_waits = SumValuesWithLabels(FetchProfile("block"), 1, "CaseStudyRead",
                                                 {{"lock", "case.study.2"}, {"mode", "read"}});
  EXPECT_NEAR(double(read_waits), double(spike_total), 0.05 * double(spike_total));
  EXPECT_LE(double(read_waits), 1.02 * double(read_total));
  // Hold profile: the write holds, exactly (every hold sampled at rate 1);
  // read holds are there too, labelled mode=read.
  auto hold = FetchProfile("hold");
  const int64_t write_holds = SumValuesWithLabels(hold, 1, "CaseStudySlowWrite",
                                                  {{"lock", "case.study.2"}, {"mode", "write"}});
  EXPECT_NEAR(double(write_holds), double(held_ns), 0.05 * double(held_ns));
  EXPECT_GT(
      SumValuesWithLabels(hold, 0, "CaseStudyRead", {{"lock", "case.study.2"}, {"mode", "read"}}),
      kWrites);

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
