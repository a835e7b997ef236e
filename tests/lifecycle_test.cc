// Lifecycle edge cases: locks with static storage used before main and
// during static destruction, a process that exits while its admin server is
// being scraped, threads that exit with lockprof state (labels, TLS
// destructors that lock), and thousands of threads at once.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "lifecycle_util.h"
#include "pyroscope_receiver.h"

namespace {

using lockprof::testing::AllRatesAtOne;
using lockprof::testing::BackgroundLoops;
using lockprof::testing::Child;
using lockprof::testing::FetchProfile;
using lockprof::testing::FreeLoopbackPort;
using lockprof::testing::HttpGet;
using lockprof::testing::LabelAt;
using lockprof::testing::ParseProfile;
using lockprof::testing::PortFromLine;
using lockprof::testing::RunCommand;
using lockprof::testing::SumValues;

// LOCKPROF_ADMIN_ADDR alone starts the endpoint in a program that never
// calls StartAdminServer, and an address without a host listens on
// 127.0.0.1 only (README "Quick start").
TEST(LifecycleTest, AdminAddrFromTheEnvironmentStartsTheEndpointOnLoopback) {
  const int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  const std::string p = std::to_string(port);
  Child child({LOCKPROF_LIFECYCLE_CHILD_PATH, "idle"}, {"LOCKPROF_ADMIN_ADDR=:" + p});
  ASSERT_NE(child.WaitForLine("ready"), "");
  int status = 0;
  const std::string index = HttpGet(port, "/debug/pprof/", &status);
  EXPECT_EQ(status, 200) << index;
  EXPECT_NE(index.find("mutex?debug=1"), std::string::npos) << index;
  const std::string listening = RunCommand("ss -ltnH 'sport = :" + p + "'");
  EXPECT_NE(listening.find("127.0.0.1:" + p), std::string::npos) << listening;
  EXPECT_EQ(listening.find("0.0.0.0:" + p), std::string::npos) << listening;
  EXPECT_EQ(listening.find("*:" + p), std::string::npos) << listening;
  EXPECT_EQ(listening.find("[::]:" + p), std::string::npos) << listening;
  // And without a port in the environment, StartAdminServer() takes the
  // documented one: 127.0.0.1:6060.
  EXPECT_EQ(lockprof::AdminServerOptions().address, "127.0.0.1");
  EXPECT_EQ(lockprof::AdminServerOptions().port, 6060);
}

// LOCKPROF_MAX_STACKS caps each profile's table; past it, new keys fold into
// one lockprof.LostSamplesStackTableFull sample, which the served profile
// shows with their values, and /metrics counts them as dropped (README
// "Sampling defaults" and "Metrics"). 100 locks of distinct names, each
// held once at hold rate 1: 100 keys for a table of 16.
TEST(LifecycleTest, MaxStacksFoldsNewKeysIntoTheLostSamplesFrameOfTheServedProfile) {
  const int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  Child child({LOCKPROF_LIFECYCLE_CHILD_PATH, "names", "100"},
              {"LOCKPROF_ADMIN_ADDR=127.0.0.1:" + std::to_string(port), "LOCKPROF_MAX_STACKS=16",
               "LOCKPROF_HOLD_RATE=1"});
  ASSERT_NE(child.WaitForLine("ready"), "");
  int status = 0;
  const auto hold = ParseProfile(HttpGet(port, "/debug/pprof/hold", &status));
  ASSERT_EQ(status, 200);
  EXPECT_LE(hold.sample_size(), 16);
  int64_t named = 0;
  for (const auto& s : hold.sample()) {
    if (lockprof::testing::LabelValue(hold, s, "lock").rfind("names.", 0) == 0) named += s.value(0);
  }
  const int64_t lost = SumValues(hold, 0, "lockprof.LostSamplesStackTableFull");
  std::printf("hold: %d samples, %lld holds under their names, %lld lost\n", hold.sample_size(),
              (long long)named, (long long)lost);
  EXPECT_GE(lost, 100 - 16);
  EXPECT_GE(named + lost, 100) << "no hold is lost, only stacks";
  const std::string top = lockprof::testing::GoPprof(
      "-top -sample_index=holds http://127.0.0.1:" + std::to_string(port) + "/debug/pprof/hold",
      &status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_NE(top.find("lockprof.LostSamplesStackTableFull"), std::string::npos) << top;
  const std::string metrics = HttpGet(port, "/metrics", &status);
  ASSERT_EQ(status, 200);
  using lockprof::testing::MetricValue;
  EXPECT_EQ(MetricValue(metrics, "lockprof_profile_samples_dropped_total{profile=\"hold\"}"),
            double(lost))
      << metrics;
  EXPECT_LE(MetricValue(metrics, "lockprof_profile_stacks{profile=\"hold\"}"), 16) << metrics;
  // The table's slots: 16 and the overflow entry, about 380 bytes each.
  const double memory = MetricValue(metrics, "lockprof_profile_memory_bytes{profile=\"hold\"}");
  EXPECT_GT(memory, 0) << metrics;
  EXPECT_LE(memory, 17 * 1024) << metrics;
  EXPECT_GE(MetricValue(metrics, "lockprof_profile_samples_recorded_total{profile=\"hold\"}"), 100)
      << metrics;
  EXPECT_EQ(MetricValue(metrics, "lockprof_hold_profile_rate"), 1) << metrics;
}

// child_static.cc contends on a static Mutex from a static initialiser and
// from a static destructor, then writes its profile from that destructor.
TEST(LifecycleTest, StaticMutexWorksBeforeMainAndDuringStaticDestruction) {
  std::string out = lockprof::testing::WriteTempFile("");
  int status = -1;
  std::string log = RunCommand(
      "LOCKPROF_LIFECYCLE_OUT=" + out + " " + LOCKPROF_LIFECYCLE_CHILD_PATH + " static 2>&1",
      &status);
  ASSERT_EQ(status, 0) << log;
  std::string data = RunCommand("cat " + out);
  std::remove(out.c_str());
  auto p = ParseProfile(data);
  EXPECT_GT(SumValues(p, 1, "StaticInitReleases"), 0);
  EXPECT_GT(SumValues(p, 1, "StaticExitReleases"), 0);
  EXPECT_EQ(LabelAt(p, "StaticExitReleases", "lock"), "lifecycle.static");
}

// Runs `lockprof-lifecycle-child serve`, which returns from main while
// clients scrape it and stops the admin server and the uploader in an
// atexit handler: exit must be clean (status 0: no crash, no sanitizer
// report, no hang).
void ExpectCleanExitWhileScraped(const std::vector<std::string>& env) {
  Child child({LOCKPROF_LIFECYCLE_CHILD_PATH, "serve", "1500"}, env);
  const int port = PortFromLine(child.WaitForLine("serving"));
  ASSERT_GT(port, 0);
  std::atomic<int> ok{0};
  {
    BackgroundLoops scrapers;
    for (const char* path : {"/debug/pprof/mutex", "/debug/pprof/hold?debug=1", "/debug/pprof/"}) {
      scrapers.Loop([&, path] {
        int code = 0;
        HttpGet(port, path, &code);
        if (code == 200) ok.fetch_add(1);
      });
    }
    EXPECT_NE(child.WaitForLine("exiting"), "");
    EXPECT_EQ(child.Wait(60), 0) << "crash, sanitizer report or hang at exit";
  }
  EXPECT_GT(ok.load(), 0);
}

TEST(LifecycleTest, ExitWhileServingAndScrapedIsClean) { ExpectCleanExitWhileScraped({}); }

// The same with the uploader running (started from the environment) and
// its request in flight to a server that never answers.
TEST(LifecycleTest, ExitWhileUploadingToAHungServerIsClean) {
  lockprof::testing::Receiver receiver({"-mode=hang"});
  ExpectCleanExitWhileScraped(
      {"LOCKPROF_PYROSCOPE_URL=" + receiver.url(), "LOCKPROF_PYROSCOPE_INTERVAL=1"});
  // The hung request is logged when its client goes away: at the exit.
  for (int i = 0; i < 100 && receiver.Requests().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(receiver.Requests().empty()) << "the uploader never reached the receiver";
}

// A program whose uploader (started from the environment, interval one
// hour) has made no request yet returns from main without stopping it: the
// exit flush, registered when the uploader started, still sends the one
// interval, with the program's contention in it.
TEST(LifecycleTest, UploaderFlushesAtExitBeforeItsFirstUpload) {
  lockprof::testing::Receiver receiver;
  int status = -1;
  const std::string log =
      RunCommand("LOCKPROF_PYROSCOPE_URL=" + receiver.url() +
                     " LOCKPROF_PYROSCOPE_INTERVAL=3600 LOCKPROF_PYROSCOPE_PROFILES=mutex " +
                     LOCKPROF_LIFECYCLE_CHILD_PATH + " contend 500 2>&1",
                 &status);
  ASSERT_EQ(status, 0) << log;
  std::vector<lockprof::testing::Upload> uploads = receiver.Uploads("mutex");
  ASSERT_EQ(uploads.size(), 1u) << "no exit flush. Child said: " << log;
  int go_status = -1;
  const std::string top =
      lockprof::testing::GoPprof("-top -sample_index=delay " + uploads[0].profile_path, &go_status);
  ASSERT_EQ(go_status, 0) << top;
  EXPECT_NE(top.find("LifecycleContendedSection"), std::string::npos) << top;
}

// exit() while StopUploader() runs on another thread, sending the last
// interval to a server that fails it twice first (retried after 0.5 to 1 s,
// then 1 to 2 s of backoff): the exit waits for that stop, which sends it.
// Before, the exit found no uploader to flush and ended the process under
// the stop, whose interval was lost.
TEST(LifecycleTest, ExitWaitsForAStopInProgressOnAnotherThread) {
  lockprof::testing::Receiver receiver({"-fail-first=2"});
  int status = -1;
  const std::string log =
      RunCommand("LOCKPROF_PYROSCOPE_URL=" + receiver.url() +
                     " LOCKPROF_PYROSCOPE_INTERVAL=3600 LOCKPROF_PYROSCOPE_PROFILES=mutex " +
                     LOCKPROF_LIFECYCLE_CHILD_PATH + " stop-and-exit 300 2>&1",
                 &status);
  ASSERT_EQ(status, 0) << log;
  EXPECT_EQ(receiver.Requests().size(), 3u) << log;
  EXPECT_EQ(receiver.Uploads("mutex").size(), 1u) << "the exit did not wait for the stop. " << log;
}

// Distinct bodies, or -fipa-icf folds them into one function.
int g_exiting_work = 0;
int g_tls_work = 0;

ABSL_ATTRIBUTE_NOINLINE void ExitingThreadWork(lockprof::Mutex* mu) {
  lockprof::MutexLock lock(mu);
  ++g_exiting_work;
}

ABSL_ATTRIBUTE_NOINLINE void TlsDestructorLocks(lockprof::Mutex* mu) {
  lockprof::MutexLock lock(mu);
  g_tls_work += 2;
}

lockprof::Mutex g_exit_mu{"lifecycle.exit"};

// A thread_local whose destructor locks: it runs while the thread is being
// torn down, after the thread's stack frames are gone.
struct LocksAtThreadExit {
  ~LocksAtThreadExit() { TlsDestructorLocks(&g_exit_mu); }
};
thread_local LocksAtThreadExit t_locks_at_exit;

void* ExitingThread(void*) {
  (void)&t_locks_at_exit;  // Constructs it, so its destructor runs at exit.
  lockprof::ScopedLabels labels({{"thread", "exiting"}});
  ExitingThreadWork(&g_exit_mu);
  // Leaves from inside the labelled scope: the unwinder destroys `labels`.
  pthread_exit(nullptr);
}

// Threads that leave with pthread_exit() from inside a ScopedLabels, and
// whose TLS destructors lock: every event is recorded, with its labels, and
// nothing recorded refers to the dead threads' memory.
TEST(LifecycleTest, ThreadsExitingWithLabelsAndTlsDestructorsThatLock) {
  AllRatesAtOne rates;
  constexpr int kThreads = 64;
  std::vector<pthread_t> threads(kThreads);
  for (auto& t : threads) ASSERT_EQ(pthread_create(&t, nullptr, &ExitingThread, nullptr), 0);
  for (auto& t : threads) pthread_join(t, nullptr);
  auto hold = FetchProfile("hold");
  EXPECT_EQ(SumValues(hold, 0, "ExitingThreadWork"), kThreads);
  EXPECT_EQ(SumValues(hold, 0, "TlsDestructorLocks"), kThreads);
  EXPECT_EQ(LabelAt(hold, "ExitingThreadWork", "thread"), "exiting");
  EXPECT_EQ(LabelAt(hold, "TlsDestructorLocks", "thread"), "");
}

ABSL_ATTRIBUTE_NOINLINE void OneOfThousands(lockprof::Mutex* mu, int64_t* counter) {
  lockprof::MutexLock lock(mu);
  ++*counter;
}

// 2000 threads alive at once, all contending on one lock with every sampler
// at rate 1: all finish, and the hold profile counts every acquisition.
TEST(LifecycleTest, TwoThousandThreadsAtOnce) {
  AllRatesAtOne rates;
  constexpr int kThreads = 2000;
  constexpr int kRounds = 5;
  lockprof::Mutex mu{"lifecycle.thousands"};
  int64_t counter = 0;
  std::mutex gate_mu;
  std::condition_variable gate;
  int arrived = 0;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      {
        std::unique_lock<std::mutex> lock(gate_mu);
        if (++arrived == kThreads) gate.notify_all();
        gate.wait(lock, [&] { return arrived == kThreads; });
      }
      for (int r = 0; r < kRounds; ++r) OneOfThousands(&mu, &counter);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, int64_t{kThreads} * kRounds);
  auto hold = FetchProfile("hold");
  EXPECT_EQ(SumValues(hold, 0, "OneOfThousands"), int64_t{kThreads} * kRounds);
  EXPECT_EQ(LabelAt(hold, "OneOfThousands", "lock"), "lifecycle.thousands");
}

}  // namespace
