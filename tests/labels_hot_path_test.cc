// ScopedLabels on the hot path: no lock once a scope's labels were seen,
// and bounded memory whatever the labels' cardinality (agent/labels.h).
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lifecycle_util.h"  // LOCKPROF_TEST_TSAN
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {
thread_local bool t_counting = false;
thread_local int64_t t_mutex_locks = 0;
}  // namespace

#ifndef LOCKPROF_TEST_TSAN
// Counts this thread's pthread mutex acquisitions while t_counting: every
// std::mutex (and absl / glibc lock built on a pthread mutex) in the
// program goes through here. (ThreadSanitizer intercepts this function
// itself: the count is not taken there.)
extern "C" int pthread_mutex_lock(pthread_mutex_t* mu) {
  using LockFn = int (*)(pthread_mutex_t*);
  static const LockFn real = reinterpret_cast<LockFn>(dlsym(RTLD_NEXT, "pthread_mutex_lock"));
  if (t_counting) ++t_mutex_locks;
  return real(mu);
}
#endif

namespace {

using lockprof::testing::MetricValue;

// A 2-label scope per request, as a server would write it.
void Request(const std::string& endpoint) {
  lockprof::ScopedLabels labels({{"endpoint", endpoint}, {"tenant", "acme"}});
  lockprof::ScopedLabels inner({{"phase", "parse"}});
}

// Not in the ThreadSanitizer build, which intercepts pthread_mutex_lock
// itself (a skipped test there would only hide that it never ran).
#ifndef LOCKPROF_TEST_TSAN
TEST(LabelsHotPathTest, NoLockOnceTheLabelsWereSeen) {
  // The interposer works: a std::mutex is counted.
  std::mutex probe;
  t_counting = true;
  probe.lock();
  probe.unlock();
  t_counting = false;
  ASSERT_EQ(t_mutex_locks, 1);

  Request("/api/cart");  // First sight: interned (may lock).
  Request("/api/home");
  t_mutex_locks = 0;
  t_counting = true;
  for (int i = 0; i < 10000; ++i) Request(i % 2 ? "/api/cart" : "/api/home");
  t_counting = false;
  EXPECT_EQ(t_mutex_locks, 0) << "mutex acquisitions in 20,000 seen-before label scopes";
}
#endif  // LOCKPROF_TEST_TSAN

int64_t RssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

// Samples in scope carry the scope's labels (the hold sampler at 1).
int64_t HoldsLabelled(const std::string& key, const std::string& value) {
  std::ostringstream out;
  EXPECT_TRUE(lockprof::WriteProfile("hold", 0, out).ok());
  const auto p = lockprof::testing::ParseProfile(out.str());
  return lockprof::testing::SumValuesWithLabel(p, 0, key, value);
}

void HoldOnce(lockprof::Mutex& mu) { std::lock_guard<lockprof::Mutex> lock(mu); }

// Request ids in labels: a new label set per scope. Memory stays bounded
// (the table holds LOCKPROF_MAX_LABEL_SETS scopes), scopes past the cap are
// counted in /metrics and labelled as folded, and scopes seen before the cap
// keep their labels.
TEST(LabelsHotPathTest, UnboundedLabelValuesCostBoundedMemory) {
  if (!lockprof::testing::InFreshProcess()) return;  // Needs the label table empty.
  constexpr int kScopes = 200000;
  const int previous_rate = lockprof::SetHoldProfileRate(1);
  lockprof::Mutex mu{"labels.capped"};
  std::string before;
  lockprof::WriteMetrics(&before);
  std::thread worker([&] {  // A fresh thread: it samples at the new rate.
    { lockprof::ScopedLabels early({{"endpoint", "/early"}}); }
    const int64_t rss_before = RssKiB();
    for (int i = 0; i < kScopes; ++i) {
      lockprof::ScopedLabels id({{"request_id", "req-0123456789abcdef-" + std::to_string(i)}});
    }
    const int64_t grown_kib = RssKiB() - rss_before;
    // Interning every set kept about 350 bytes each: ~70 MB here.
    EXPECT_LT(grown_kib, 16 * 1024) << "KiB for " << kScopes << " distinct label sets";
    {
      lockprof::ScopedLabels late({{"request_id", "req-after-the-cap"}});
      for (int i = 0; i < 5; ++i) HoldOnce(mu);
    }
    lockprof::ScopedLabels early({{"endpoint", "/early"}});
    for (int i = 0; i < 3; ++i) HoldOnce(mu);
  });
  worker.join();
  lockprof::SetHoldProfileRate(previous_rate);
  EXPECT_EQ(HoldsLabelled("lockprof", "LabelSetTableFull"), 5);
  EXPECT_EQ(HoldsLabelled("request_id", "req-after-the-cap"), 0);
  EXPECT_EQ(HoldsLabelled("endpoint", "/early"), 3);

  std::string after;
  lockprof::WriteMetrics(&after);
  const double scopes = MetricValue(after, "lockprof_label_scopes");
  EXPECT_LE(scopes, 4096) << after;  // The default cap.
  EXPECT_GE(scopes, 1) << after;
  const double folded_before = MetricValue(before, "lockprof_label_scopes_folded_total");
  const double folded = MetricValue(after, "lockprof_label_scopes_folded_total") -
                        (std::isnan(folded_before) ? 0 : folded_before);
  // Every scope the table could not take, plus the late one.
  EXPECT_GE(folded, kScopes + 1 - 4096) << after;
  EXPECT_LE(folded, kScopes + 1) << after;
}

// The cap on sets leaves each set's size to the caller: the bytes interned
// are capped too. 64 scopes with a 1 MiB value each kept about 192 MiB
// (three copies of each); now the table fills at 17 MiB and later scopes
// fold.
TEST(LabelsHotPathTest, HugeLabelValuesCostBoundedMemory) {
  std::string before;
  lockprof::WriteMetrics(&before);
  // One buffer, changed in place for each scope: what grows is what the
  // scopes keep (and no freed buffer waits in ASan's quarantine).
  std::string value(1 << 20, 'a');
  const int64_t rss_before = RssKiB();
  for (int i = 0; i < 64; ++i) {
    value[size_t(i)] = 'b';
    lockprof::ScopedLabels huge({{"body", value}});
  }
  const int64_t grown_kib = RssKiB() - rss_before;
  // Bounded by the 17 MiB cap, plus what the sanitizers' shadow memory adds
  // to it (46 MiB in all under ThreadSanitizer); far below the 192 MiB kept
  // before the cap.
  EXPECT_LT(grown_kib, 96 * 1024) << "KiB for 64 label sets of 1 MiB";
  std::string after;
  lockprof::WriteMetrics(&after);
  const double folded_before = MetricValue(before, "lockprof_label_scopes_folded_total");
  const double folded = MetricValue(after, "lockprof_label_scopes_folded_total") -
                        (std::isnan(folded_before) ? 0 : folded_before);
  EXPECT_GE(folded, 64 - 17) << after;
}

// One value larger than the whole byte cap (a request body put in a label)
// is folded, and costs later scopes nothing: they keep their labels.
TEST(LabelsHotPathTest, OneOversizedValueLeavesOtherScopesTheirLabels) {
  if (!lockprof::testing::InFreshProcess()) return;  // Needs the label table empty.
  const int previous_rate = lockprof::SetHoldProfileRate(1);
  lockprof::Mutex mu{"labels.oversized"};
  std::thread worker([&] {  // A fresh thread: it samples at the new rate.
    {
      lockprof::ScopedLabels huge({{"body", std::string(18 << 20, 'x')}});
      HoldOnce(mu);
    }
    lockprof::ScopedLabels after({{"endpoint", "/after-the-body"}});
    for (int i = 0; i < 3; ++i) HoldOnce(mu);
  });
  worker.join();
  lockprof::SetHoldProfileRate(previous_rate);
  EXPECT_EQ(HoldsLabelled("lockprof", "LabelSetTableFull"), 1);
  EXPECT_EQ(HoldsLabelled("endpoint", "/after-the-body"), 3);
}

#ifndef LOCKPROF_TEST_TSAN  // Counts pthread_mutex_lock: see above.
// A small scope inside one whose labels nearly fill the byte cap: its own
// labels fit, the set they make with the outer ones does not, so it is
// folded, and kept as folded: constructed again, it takes no lock. It took
// the registry's mutex, and copied the outer scope's 3 MB, every time.
TEST(LabelsHotPathTest, AScopeFoldedForItsMergedSetTakesNoLockWhenItComesBack) {
  if (!lockprof::testing::InFreshProcess()) return;  // Needs the label table empty.
  { lockprof::ScopedLabels filler({{"filler", std::string(2000000, 'y')}}); }
  lockprof::ScopedLabels outer({{"body", std::string(3000000, 'x')}});
  std::string before;
  lockprof::WriteMetrics(&before);
  { lockprof::ScopedLabels first({{"phase", "parse"}}); }  // Folded.
  t_mutex_locks = 0;
  t_counting = true;
  for (int i = 0; i < 100; ++i) lockprof::ScopedLabels again({{"phase", "parse"}});
  t_counting = false;
  EXPECT_EQ(t_mutex_locks, 0) << "mutex acquisitions in 100 constructions of a folded scope";
  std::string after;
  lockprof::WriteMetrics(&after);
  // Each construction still counts as folded.
  EXPECT_EQ(MetricValue(after, "lockprof_label_scopes_folded_total") -
                MetricValue(before, "lockprof_label_scopes_folded_total"),
            101);
}
#endif  // LOCKPROF_TEST_TSAN

#ifndef LOCKPROF_TEST_TSAN  // Counts pthread_mutex_lock: see above.
// A scope too large for the bytes left is never interned: each time it
// comes back (a request body as a label, on every request) it is folded
// again. It took the registry's mutex every time (10 locks here).
TEST(LabelsHotPathTest, AScopeTooLargeForTheCapTakesNoLockWhenItComesBack) {
  const std::string body(18 << 20, 'x');
  { lockprof::ScopedLabels first({{"body", body}}); }
  t_mutex_locks = 0;
  t_counting = true;
  for (int i = 0; i < 10; ++i) lockprof::ScopedLabels again({{"body", body}});
  t_counting = false;
  EXPECT_EQ(t_mutex_locks, 0);
}
#endif

// The byte cap counts what each label costs, not only its characters:
// 1500 nested scopes, each adding a distinct short key, kept about 200 MiB
// (each level's set copies all the labels above it, twice, at 64 bytes of
// std::string each) while the cap counted 4 bytes a label.
TEST(LabelsHotPathTest, ManyShortLabelsCostBoundedMemory) {
  std::vector<std::unique_ptr<lockprof::ScopedLabels>> nested;
  const int64_t rss_before = RssKiB();
  for (int i = 0; i < 1500; ++i) {
    const std::string key = "k" + std::to_string(i);
    nested.emplace_back(new lockprof::ScopedLabels({{key, ""}}));
  }
  const int64_t grown_kib = RssKiB() - rss_before;
  while (!nested.empty()) nested.pop_back();  // Innermost first.
  // The 17 MiB cap and the sanitizers' shadow of it (as above).
  EXPECT_LT(grown_kib, 96 * 1024) << "KiB for 1500 nested scopes";
}

}  // namespace
