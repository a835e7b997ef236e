// Locks used from a dlopen()ed library: their events are profiled, and the
// profiles stay valid after the library is unloaded (names of locks and of
// functions are never read from the unmapped library).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

#include "lockprof/agent/metrics.h"

#include "lifecycle_util.h"

namespace {

using lockprof::testing::AllRatesAtOne;
using lockprof::testing::FetchProfile;
using lockprof::testing::FetchProfileBytes;
using lockprof::testing::LabelAt;
using lockprof::testing::MetricValue;
using lockprof::testing::SumValues;

using RunFn = int64_t (*)(int threads, int iterations);
constexpr int kThreads = 4;
constexpr int kIterations = 2000;

// The program's own lock: the program uses lockprof too (that is what links
// lockprof's primitives into it, for the plugin to use).
lockprof::Mutex g_host_mu{"host.lock"};

// Loads the plugin, runs it, unloads it, and checks that it is gone.
void RunPluginOnce(bool profile_while_loaded) {
  lockprof::MutexLock lock(&g_host_mu);
  void* plugin = dlopen(LOCKPROF_TEST_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(plugin, nullptr) << dlerror();
  auto run = reinterpret_cast<RunFn>(dlsym(plugin, "lockprof_test_plugin_run"));
  ASSERT_NE(run, nullptr) << dlerror();
  EXPECT_EQ(run(kThreads, kIterations), kThreads * kIterations);
  if (profile_while_loaded) {
    auto hold = FetchProfile("hold");
    EXPECT_EQ(SumValues(hold, 0, "PluginCriticalSection"), kThreads * kIterations);
    EXPECT_EQ(LabelAt(hold, "PluginCriticalSection", "lock"), "plugin.lock");
  }
  ASSERT_EQ(dlclose(plugin), 0);
  ASSERT_EQ(dlopen(LOCKPROF_TEST_PLUGIN_PATH, RTLD_NOW | RTLD_NOLOAD), nullptr)
      << "the plugin is still loaded: this test would prove nothing";
}

// Sum of value[index] over samples labelled lock=`lock`.
int64_t SumForLock(const perftools::profiles::Profile& p, int index, const std::string& lock) {
  int64_t sum = 0;
  for (const auto& s : p.sample()) {
    for (const auto& l : s.label()) {
      if (p.string_table(int(l.key())) == "lock" && p.string_table(int(l.str())) == lock) {
        sum += s.value(index);
      }
    }
  }
  return sum;
}

// Every profile, in both forms, builds after the plugin is gone.
void ExpectEveryProfileBuilds() {
  for (const std::string& name : lockprof::ProfileNames()) {
    EXPECT_FALSE(FetchProfileBytes(name, 0).empty()) << name;
    EXPECT_FALSE(FetchProfileBytes(name, 1).empty()) << name;
  }
}

// Profiled while loaded: after unloading, the samples keep their lock name
// (the profile tables' own copy) and their function names (symbolized, and
// cached, while the code was mapped).
TEST(DlopenTest, PluginLocksAreProfiledAndOutliveTheUnload) {
  AllRatesAtOne rates;
  const auto before = FetchProfile("hold");
  RunPluginOnce(/*profile_while_loaded=*/true);
  ExpectEveryProfileBuilds();
  auto hold = FetchProfile("hold");
  // Counted from what the process had (the profiles are cumulative, and the
  // other tests here load the same plugin).
  EXPECT_EQ(SumForLock(hold, 0, "plugin.lock") - SumForLock(before, 0, "plugin.lock"),
            kThreads * kIterations);
  EXPECT_EQ(
      SumValues(hold, 0, "PluginCriticalSection") - SumValues(before, 0, "PluginCriticalSection"),
      kThreads * kIterations);
}

// Never profiled while loaded: the samples are still there, with their lock
// name; their frames in the unloaded code have addresses only (documented).
// Loading the plugin again (maybe elsewhere) adds to the same lock.
TEST(DlopenTest, PluginUnloadedBeforeAnyProfileStillEncodes) {
  AllRatesAtOne rates;
  const int64_t before = SumForLock(FetchProfile("hold"), 0, "plugin.lock");
  RunPluginOnce(/*profile_while_loaded=*/false);
  ExpectEveryProfileBuilds();
  EXPECT_EQ(SumForLock(FetchProfile("hold"), 0, "plugin.lock") - before, kThreads * kIterations);
  RunPluginOnce(/*profile_while_loaded=*/false);
  EXPECT_EQ(SumForLock(FetchProfile("hold"), 0, "plugin.lock") - before,
            2 * kThreads * kIterations);
}

// The per-lock metrics keep their own copy of the name too: a scrape after
// the unload reads no byte of the unmapped library (it used to read the
// name from there, and died), and still reports the plugin's lock, with
// every hold the plugin made (the hold sampler at 1 times each one).
TEST(DlopenTest, MetricsAfterTheUnloadKeepThePluginLock) {
  AllRatesAtOne rates;
  const std::string series = "lockprof_lock_hold_seconds_count{lock=\"plugin.lock\"}";
  std::string before;
  lockprof::WriteMetrics(&before);
  RunPluginOnce(/*profile_while_loaded=*/false);
  std::string after;
  lockprof::WriteMetrics(&after);
  const double held_before =
      before.find(series) == std::string::npos ? 0 : MetricValue(before, series);
  EXPECT_EQ(MetricValue(after, series) - held_before, kThreads * kIterations) << after;
}

}  // namespace
