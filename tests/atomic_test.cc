// lockprof::Atomic<T>: std::atomic's operations, and Update's CAS loop,
// exact under contention and profiled in /debug/pprof/cas. Ground truth for
// retries comes from counting calls of the update function: every call but
// the last of an Update is a failed attempt.
#include "lockprof/primitives/atomic.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::FetchProfile;
using lockprof::testing::GoPprof;
using lockprof::testing::NowNanos;
using lockprof::testing::ParseProfile;
using lockprof::testing::SamplesForLock;
using lockprof::testing::ScopedRates;
using lockprof::testing::SpinFor;
using lockprof::testing::StackFunctions;
using lockprof::testing::SumValues;

// The tests here set only the mutex fraction, which the CAS profile shares.
constexpr int kKeep = ScopedRates::kKeep;

// The CAS loop the profile must charge: `iterations` increments, counting
// every call of the update function in *calls.
ABSL_ATTRIBUTE_NOINLINE void CasLoopHotSpot(lockprof::Atomic<int64_t>& value, int iterations,
                                            int64_t* calls) {
  for (int i = 0; i < iterations; ++i) {
    value.Update([calls](int64_t old) {
      ++*calls;
      // A little work between load and CAS widens the window for conflicts.
      for (int k = 0; k < 20; ++k) asm volatile("");
      return old + 1;
    });
  }
}

// The update function of a CAS loop that retries exactly once, by
// construction: its first call changes the value behind the CAS's back; its
// second, the retry, runs `on_retry` first.
template <typename F>
auto RetriesOnce(lockprof::Atomic<int64_t>& value, F on_retry) {
  return [&value, on_retry, interfered = false](int64_t old) mutable {
    if (!interfered) {
      interfered = true;
      value.fetch_add(1);
    } else {
      on_retry();
    }
    return old + 1;
  };
}

// Every Update here conflicts exactly once.
ABSL_ATTRIBUTE_NOINLINE void CasLoopForcedRetry(lockprof::Atomic<int64_t>& value, int iterations) {
  for (int i = 0; i < iterations; ++i) value.Update(RetriesOnce(value, [] {}));
}

// As CasLoopForcedRetry, and each retry spins for `retry_ns`, adding the time
// that took to *retry_time: each loop's retry time is at least that.
ABSL_ATTRIBUTE_NOINLINE void CasLoopTimedRetry(lockprof::Atomic<int64_t>& value, int iterations,
                                               int64_t retry_ns, int64_t* retry_time) {
  for (int i = 0; i < iterations; ++i) {
    value.Update(RetriesOnce(value, [&] {
      const int64_t start = NowNanos();
      SpinFor(retry_ns);
      *retry_time += NowNanos() - start;
    }));
  }
}

// Runs CasLoopForcedRetry `iterations` times on a fresh Atomic at mutex
// fraction `fraction`; returns the retries and delay the cas profile gained
// for it. The truth is `iterations` retries.
std::pair<int64_t, int64_t> RecordForcedRetries(int fraction, int iterations) {
  ScopedRates scoped(fraction, kKeep, kKeep);
  auto before = FetchProfile("cas");
  lockprof::Atomic<int64_t> value{"test.forced"};
  CasLoopForcedRetry(value, iterations);
  EXPECT_EQ(value.load(), 2 * iterations);
  auto after = FetchProfile("cas");
  return {SumValues(after, 0, "CasLoopForcedRetry") - SumValues(before, 0, "CasLoopForcedRetry"),
          SumValues(after, 1, "CasLoopForcedRetry") - SumValues(before, 1, "CasLoopForcedRetry")};
}

// Runs `threads` threads through CasLoopHotSpot, released together; returns
// the true number of failed attempts.
int64_t RunContended(lockprof::Atomic<int64_t>& value, int threads, int iterations) {
  std::vector<int64_t> calls(size_t(threads), 0);
  std::atomic<int> waiting{threads};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      waiting.fetch_sub(1);
      while (waiting.load() > 0) {
      }
      CasLoopHotSpot(value, iterations, &calls[size_t(t)]);
    });
  }
  for (auto& w : workers) w.join();
  int64_t failed = 0;
  for (int64_t c : calls) failed += c - iterations;
  return failed;
}

// Generic code written against std::atomic names these.
static_assert(
    std::is_same_v<lockprof::Atomic<int>::difference_type, std::atomic<int>::difference_type>);
static_assert(
    std::is_same_v<lockprof::Atomic<char*>::difference_type, std::atomic<char*>::difference_type>);

TEST(AtomicTest, StdAtomicOperations) {
  lockprof::Atomic<int> i{"test.int"};
  EXPECT_EQ(i.load(), 0);
  EXPECT_STREQ(i.name(), "test.int");
  i = 5;
  EXPECT_EQ(i.fetch_add(2), 5);
  EXPECT_EQ(i.fetch_sub(1), 7);
  EXPECT_EQ(++i, 7);
  EXPECT_EQ(i--, 7);
  EXPECT_EQ(i += 10, 16);
  EXPECT_EQ(i.fetch_or(1), 16);
  EXPECT_EQ(i.fetch_and(3), 17);
  EXPECT_EQ(i ^= 3, 2);
  EXPECT_EQ(i.exchange(9), 2);
  int expected = 8;
  EXPECT_FALSE(i.compare_exchange_strong(expected, 1));
  EXPECT_EQ(expected, 9);
  EXPECT_TRUE(
      i.compare_exchange_strong(expected, 1, std::memory_order_acq_rel, std::memory_order_acquire));
  EXPECT_EQ(int(i), 1);
  EXPECT_TRUE(i.is_lock_free());

  int array[4] = {0, 1, 2, 3};
  lockprof::Atomic<int*> p(array);
  EXPECT_EQ(p.fetch_add(2), array);
  EXPECT_EQ(*p.load(), 2);
  EXPECT_EQ(--p, array + 1);

  lockprof::Atomic<bool> b{"test.bool"};
  EXPECT_FALSE(b.load());
  EXPECT_FALSE(b.exchange(true));

  struct Pair {
    int32_t lo, hi;
  };
  lockprof::Atomic<Pair> pair("test.pair", Pair{1, 2});
  Pair old = pair.Update([](const Pair& v) { return Pair{v.hi, v.lo + v.hi}; });
  EXPECT_EQ(old.lo, 1);
  EXPECT_EQ(pair.load().hi, 3);
  EXPECT_TRUE(lockprof::Atomic<Pair>::is_always_lock_free);

  lockprof::Atomic<const char*> s("test.str", "x");
  EXPECT_STREQ(s.load(), "x");
}

// A value that a string literal constructs.
struct Tag {
  char text[8] = {};
  constexpr Tag() = default;
  template <size_t N>
  constexpr Tag(const char (&s)[N]) {  // NOLINT: implicit, as the test needs
    for (size_t i = 0; i < N && i < sizeof text; ++i) text[i] = s[i];
  }
};

// One string literal is a name where it cannot be a value, and a value
// (as std::atomic takes it) where it can: a std::string_view, a class that
// a literal constructs.
TEST(AtomicTest, AStringLiteralIsAValueWhereTheTypeTakesOne) {
  lockprof::Atomic<std::string_view> view("hello");
  EXPECT_EQ(view.load(), "hello");
  EXPECT_EQ(view.name(), nullptr);
  lockprof::Atomic<std::string_view> named("test.view", "world");
  EXPECT_EQ(named.load(), "world");
  EXPECT_STREQ(named.name(), "test.view");

  lockprof::Atomic<Tag> tag("abc");
  EXPECT_STREQ(tag.load().text, "abc");

  struct Plain {
    int32_t a = 7;
  };
  lockprof::Atomic<Plain> plain("test.plain");
  EXPECT_EQ(plain.load().a, 7);
  EXPECT_STREQ(plain.name(), "test.plain");

  enum class Color : int { kRed, kBlue };
  lockprof::Atomic<Color> color("test.color");
  EXPECT_EQ(color.load(), Color::kRed);
  EXPECT_STREQ(color.name(), "test.color");
  static_assert(!std::is_constructible_v<lockprof::Atomic<int>, char(&)[4]>,
                "a mutable array is not a name");
}

TEST(AtomicTest, UpdateReturnsTheReplacedValue) {
  lockprof::Atomic<int64_t> v(10);
  EXPECT_EQ(v.Update([](int64_t x) { return x * 3; }), 10);
  EXPECT_EQ(v.load(), 30);
}

TEST(AtomicTest, UpdateIsExactUnderContention) {
  ScopedRates fraction(1, kKeep, kKeep);
  lockprof::Atomic<int64_t> value{"test.exact"};
  constexpr int kThreads = 4, kIters = 100000;
  RunContended(value, kThreads, kIters);
  EXPECT_EQ(value.load(), int64_t{kThreads} * kIters);
}

TEST(AtomicTest, ForcedRetriesAreCountedExactlyAtFractionOne) {
  auto [retries, delay] = RecordForcedRetries(1, 1000);
  EXPECT_EQ(retries, 1000);
  EXPECT_GT(delay, 0);
}

// Conflicts need two threads on two CPUs between a load and a CAS, which a
// loaded machine may not give on the first round: repeat (bounded) until
// some happened. Whatever happened, the profile must match it exactly.
TEST(AtomicTest, ContendedRetriesMatchTheTruthAtFractionOne) {
  ScopedRates fraction(1, kKeep, kKeep);
  const int64_t before = SumValues(FetchProfile("cas"), 0, "CasLoopHotSpot");
  lockprof::Atomic<int64_t> value{"test.contended"};
  int64_t truth = 0, rounds = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (truth == 0 && std::chrono::steady_clock::now() < deadline) {
    truth += RunContended(value, 4, 200000);
    ++rounds;
  }
  ASSERT_GT(truth, 0) << "four threads on a shared counter never conflicted";
  EXPECT_EQ(value.load(), rounds * 4 * 200000);
  EXPECT_EQ(SumValues(FetchProfile("cas"), 0, "CasLoopHotSpot") - before, truth);
}

// The delay of a loop is its time retrying: from the failed first attempt
// to the successful CAS. Here every retry spins (timed by the test), so the
// total lies between the time the retries' update calls took and the time
// the whole run took, which adds only the first attempts and the recording
// (about 1%): a delay scaled by 1.2, or counted from before the first
// attempt, falls outside.
TEST(AtomicTest, RetryDelayIsTheTimeSpentRetrying) {
  ScopedRates fraction(1, kKeep, kKeep);
  constexpr int kIters = 100;
  lockprof::Atomic<int64_t> value{"test.timed"};
  // The upper bound tells a 20% excess only if the run was not preempted
  // outside the retries for long: up to five rounds, until one took less
  // than 1.15 times its retries. Every round must be within the bounds.
  bool sharp = false;
  for (int round = 0; round < 5 && !sharp; ++round) {
    const int64_t before = SumValues(FetchProfile("cas"), 1, "CasLoopTimedRetry");
    int64_t retry_time = 0;
    const int64_t start = NowNanos();
    CasLoopTimedRetry(value, kIters, 200'000, &retry_time);
    const int64_t took = NowNanos() - start;
    const int64_t delay = SumValues(FetchProfile("cas"), 1, "CasLoopTimedRetry") - before;
    std::printf("round %d: retries %lld ns, delay %lld ns, all %lld ns\n", round,
                (long long)retry_time, (long long)delay, (long long)took);
    EXPECT_GE(delay, retry_time);
    EXPECT_LE(delay, took);
    sharp = took < retry_time * 115 / 100;
  }
  EXPECT_TRUE(sharp) << "machine too busy: every round was preempted outside its retries";
}

// Fraction 10: each retrying loop is kept with probability 1/10 and scaled
// by 10, so n loops of one retry each sum to n with variance (10 - 1) * n.
// The bound is five standard deviations (about 10% for 20000 loops): a
// missing scaling (-90%), a double one (+900%) and a scale off by 1.2 (+20%)
// are all far outside.
TEST(AtomicTest, SampledRetriesAreUnbiased) {
  constexpr int kIters = 20000, kFraction = 10;
  const int64_t got = RecordForcedRetries(kFraction, kIters).first;
  const double bound = 5 * std::sqrt(double(kFraction - 1) * kIters);
  EXPECT_NEAR(double(got), double(kIters), bound);
  EXPECT_EQ(got % kFraction, 0) << "each kept sample is scaled by the fraction";
}

TEST(AtomicTest, FirstTimeSuccessRecordsNothing) {
  ScopedRates fraction(1, kKeep, kKeep);
  lockprof::Atomic<int64_t> value{"test.uncontended"};
  const auto before = lockprof::ProfileSampleCount("cas");
  for (int i = 0; i < 10000; ++i) value.Update([](int64_t v) { return v + 1; });
  EXPECT_EQ(lockprof::ProfileSampleCount("cas"), before);
  EXPECT_EQ(value.load(), 10000);
}

TEST(AtomicTest, FractionZeroRecordsNothing) {
  EXPECT_EQ(RecordForcedRetries(0, 100), std::make_pair(int64_t{0}, int64_t{0}));
}

// End to end: /debug/pprof/cas through go tool pprof, the leaf being the
// function that runs the loop, with its lock label.
TEST(AtomicTest, GoToolPprofShowsTheCasLoop) {
  ScopedRates fraction(1, kKeep, kKeep);
  ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  const std::string url =
      "http://127.0.0.1:" + std::to_string(lockprof::AdminServerPort()) + "/debug/pprof/cas";
  static lockprof::Atomic<int64_t> value{"e2e.cas"};
  CasLoopForcedRetry(value, 500);

  int status;
  std::string top = GoPprof("-top -sample_index=retries -tagfocus=lock=e2e.cas " + url, &status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_NE(top.find("CasLoopForcedRetry"), std::string::npos) << top;
  EXPECT_EQ(top.find("lockprof::"), std::string::npos) << "internal frames not trimmed:\n" << top;

  std::string raw = GoPprof("-raw " + url, &status);
  ASSERT_EQ(status, 0) << raw;
  EXPECT_NE(raw.find("retries/count delay/nanoseconds"), std::string::npos) << raw;
  EXPECT_NE(raw.find("lock:[e2e.cas]"), std::string::npos) << raw;

  // The leaf of the labelled sample is the loop's own function.
  int status_curl;
  auto profile = ParseProfile(
      lockprof::testing::HttpGet(lockprof::AdminServerPort(), "/debug/pprof/cas", &status_curl));
  ASSERT_EQ(status_curl, 200);
  auto samples = SamplesForLock(profile, "e2e.cas");
  ASSERT_EQ(samples.size(), 1u);
  auto names = StackFunctions(profile, *samples[0]);
  ASSERT_FALSE(names.empty());
  EXPECT_NE(names[0].find("CasLoopForcedRetry"), std::string::npos) << names[0];
  EXPECT_EQ(samples[0]->value(0), 500);
  lockprof::StopAdminServer();
}

}  // namespace
