// lockprof::CondVar: the std::condition_variable API on lockprof::Mutex, no
// lost wake-ups under stress, timeouts, and the block profile charging each
// waiter's stack with its wait.
#include "lockprof/primitives/condvar.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <initializer_list>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::FetchProfileToFile;
using lockprof::testing::GoPprof;
using lockprof::testing::NowNanos;
using lockprof::testing::ProfileDelta;
using lockprof::testing::ScopedRates;
using lockprof::testing::TopFunction;
using Lock = std::unique_lock<lockprof::Mutex>;
using std::chrono::milliseconds;

ABSL_CONST_INIT lockprof::CondVar g_global_cv;

// Waits until `progress` reaches `target`. Fails the test if it stops
// moving for 10 s first — a lost wake-up leaves every thread asleep — and
// then sets `abandoned` (under `mu`) and wakes every waiter of `cvs`, so
// that the test ends instead of hanging.
void Watchdog(const std::atomic<int64_t>& progress, int64_t target, lockprof::Mutex& mu,
              bool& abandoned, std::initializer_list<lockprof::CondVar*> cvs) {
  const auto stall = std::chrono::seconds(10);
  int64_t seen = -1;
  auto since = std::chrono::steady_clock::now();
  while (progress.load() < target) {
    std::this_thread::sleep_for(milliseconds(5));
    const int64_t now = progress.load();
    if (now != seen) {
      seen = now;
      since = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - since > stall) {
      ADD_FAILURE() << "no progress for 10 s at " << now << ": a wake-up was lost";
      Lock l(mu);
      abandoned = true;
      for (lockprof::CondVar* cv : cvs) cv->notify_all();
      return;
    }
  }
}

TEST(CondVarTest, WaitWithPredicateSeesTheNotifiedState) {
  lockprof::Mutex mu;
  bool ready = false;
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(5));
    Lock l(mu);
    ready = true;
    g_global_cv.notify_one();
  });
  Lock l(mu);
  g_global_cv.wait(l, [&] { return ready; });
  EXPECT_TRUE(l.owns_lock());
  l.unlock();
  t.join();
  g_global_cv.notify_all();  // Nobody waits: a no-op.
}

TEST(CondVarTest, TimeoutsReturnTimeoutAndHoldTheLock) {
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  Lock l(mu);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(cv.wait_for(l, milliseconds(20)), std::cv_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(20));
  EXPECT_TRUE(l.owns_lock());
  EXPECT_FALSE(cv.wait_for(l, milliseconds(5), [] { return false; }));
  EXPECT_TRUE(cv.wait_for(l, milliseconds(5), [] { return true; }));
  EXPECT_EQ(cv.wait_until(l, std::chrono::steady_clock::now() + milliseconds(5)),
            std::cv_status::timeout);
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(cv.wait_until(l, std::chrono::system_clock::now() + milliseconds(10)),
            std::cv_status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(9));
  EXPECT_FALSE(
      cv.wait_until(l, std::chrono::system_clock::now() - milliseconds(1), [] { return false; }));
  EXPECT_EQ(cv.wait_for(l, std::chrono::duration<double>(-1)), std::cv_status::timeout);
  EXPECT_TRUE(l.owns_lock());
}

// The ends of every unit's range: time_point<Clock, seconds>::max() is a
// deadline that never comes (it overflowed into the past in nanoseconds, and
// the wait timed out at once), min() one that has passed (its distance from
// now overflowed into the future, and the wait hung).
TEST(CondVarTest, DeadlinesAtTheEndsOfTheirRangeWaitAsStdDoes) {
  using std::chrono::seconds;
  using std::chrono::steady_clock;
  using std::chrono::system_clock;
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  Lock l(mu);
  EXPECT_EQ(cv.wait_until(l, std::chrono::time_point<steady_clock, seconds>::min()),
            std::cv_status::timeout);
  EXPECT_EQ(cv.wait_until(l, steady_clock::time_point::min()), std::cv_status::timeout);
  EXPECT_FALSE(cv.wait_until(l, std::chrono::time_point<system_clock, milliseconds>::min(),
                             [] { return false; }));
  EXPECT_EQ(cv.wait_for(l, std::chrono::duration<int64_t, std::pico>::min()),
            std::cv_status::timeout);
  EXPECT_TRUE(l.owns_lock());
  int notified = 0;
  auto notify_soon = [&] {
    return std::thread([&] {
      std::this_thread::sleep_for(milliseconds(30));
      Lock n(mu);
      ++notified;
      cv.notify_all();
    });
  };
  auto wait = [&](auto deadline) {
    const int before = notified;
    std::thread t = notify_soon();
    const int64_t start = NowNanos();
    const bool ok = cv.wait_until(l, deadline, [&] { return notified > before; });
    l.unlock();
    t.join();
    l.lock();
    return ok && NowNanos() - start >= 25'000'000;
  };
  EXPECT_TRUE(wait(std::chrono::time_point<steady_clock, seconds>::max()));
  EXPECT_TRUE(wait(std::chrono::time_point<steady_clock, milliseconds>::max()));
  EXPECT_TRUE(wait(std::chrono::time_point<system_clock, seconds>::max()));
  EXPECT_TRUE(wait(steady_clock::time_point::max()));
  const int before = notified;
  std::thread t = notify_soon();
  EXPECT_TRUE(cv.wait_for(l, std::chrono::duration<int64_t, std::pico>::max(),
                          [&] { return notified > before; }));
  l.unlock();
  t.join();
}

TEST(CondVarTest, NotifiedBeforeTheDeadlineIsNoTimeout) {
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  bool ready = false;
  std::thread t([&] {
    std::this_thread::sleep_for(milliseconds(5));
    Lock l(mu);
    ready = true;
    cv.notify_all();
  });
  Lock l(mu);
  EXPECT_TRUE(cv.wait_for(l, std::chrono::hours(1), [&] { return ready; }));
  l.unlock();
  t.join();
}

// Waiters wake in the order they queued.
TEST(CondVarTest, NotifyOneWakesTheLongestWaiter) {
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  constexpr int kWaiters = 4;
  std::vector<int> woken;
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&, i] {
      Lock l(mu);
      cv.wait(l);
      woken.push_back(i);
    });
    // Let it queue before the next one starts.
    std::this_thread::sleep_for(milliseconds(10));
  }
  for (int i = 0; i < kWaiters; ++i) {
    cv.notify_one();
    while (true) {
      Lock l(mu);
      if (int(woken.size()) == i + 1) break;
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(woken, (std::vector<int>{0, 1, 2, 3}));
}

// Ping-pong: each thread waits for its turn and hands it over with
// notify_one. A single lost wake-up stops both.
TEST(CondVarTest, PingPongLosesNoWakeUp) {
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  constexpr int64_t kRounds = 20000;
  int turn = 0;
  bool abandoned = false;
  std::atomic<int64_t> passes{0};
  auto player = [&](int me) {
    Lock l(mu);
    while (passes.load() < kRounds && !abandoned) {
      cv.wait(l, [&] { return turn == me || abandoned; });
      turn = 1 - me;
      passes.fetch_add(1);
      cv.notify_one();
    }
  };
  std::thread a(player, 0), b(player, 1);
  Watchdog(passes, kRounds, mu, abandoned, {&cv});
  a.join();
  b.join();
}

// A token goes round a ring of threads; each waits for its number, passes
// it on and wakes everyone (notify_all), half the time through wait_for.
TEST(CondVarTest, RingWithNotifyAllLosesNoWakeUp) {
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  constexpr int kThreads = 5;
  constexpr int64_t kPasses = 5000;
  int token = 0;
  bool abandoned = false;
  std::atomic<int64_t> passes{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Lock l(mu);
      for (int n = 0; passes.load() < kPasses && !abandoned; ++n) {
        auto mine = [&] { return token == i || abandoned || passes.load() >= kPasses; };
        if (n % 2 == 0) {
          cv.wait(l, mine);
        } else {
          while (!cv.wait_for(l, std::chrono::microseconds(50), mine)) {
          }
        }
        if (token != i) continue;
        token = (i + 1) % kThreads;
        passes.fetch_add(1);
        cv.notify_all();
      }
    });
  }
  Watchdog(passes, kPasses, mu, abandoned, {&cv});
  {
    Lock l(mu);
    cv.notify_all();
  }
  for (auto& t : threads) t.join();
}

// A bounded buffer: producers wait while it is full, consumers while it is
// empty, one notify_one per change on each side; one consumer polls with
// short timeouts that race the notifications. Every item arrives once, and
// a lost wake-up stalls the pipeline.
TEST(CondVarTest, BoundedBufferLosesNoWakeUp) {
  lockprof::Mutex mu{"cv.queue"};
  lockprof::CondVar not_empty, not_full;
  constexpr int kProducers = 3, kConsumers = 3;
  constexpr size_t kCapacity = 4;
  constexpr int64_t kItems = 30000;
  std::deque<int64_t> queue;
  int producers_left = kProducers;
  bool abandoned = false;
  std::atomic<int64_t> consumed{0}, sum{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      Lock l(mu);
      for (int64_t i = p; i < kItems && !abandoned; i += kProducers) {
        not_full.wait(l, [&] { return queue.size() < kCapacity || abandoned; });
        queue.push_back(i);
        not_empty.notify_one();
      }
      if (--producers_left == 0) not_empty.notify_all();
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      Lock l(mu);
      for (;;) {
        auto ready = [&] { return !queue.empty() || producers_left == 0 || abandoned; };
        if (c != 0) {
          not_empty.wait(l, ready);
        } else if (!not_empty.wait_for(l, std::chrono::microseconds(20), ready)) {
          continue;
        }
        if (queue.empty()) return;  // Producers done, queue drained.
        sum.fetch_add(queue.front());
        queue.pop_front();
        consumed.fetch_add(1);
        not_full.notify_one();
      }
    });
  }
  Watchdog(consumed, kItems, mu, abandoned, {&not_empty, &not_full});
  for (auto& t : threads) t.join();
  EXPECT_EQ(consumed.load(), kItems);
  EXPECT_EQ(sum.load(), kItems * (kItems - 1) / 2);
}

TEST(CondVarDeathTest, WaitWithoutTheLockAborts) {
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  Lock l(mu, std::defer_lock);
  EXPECT_DEATH(cv.wait(l), "lockprof: CondVar::wait: the unique_lock does not own its mutex");
}

// The waiter's function: the block profile must charge it. Returns when it
// started waiting; `waited` is the span from then until it holds mu again.
ABSL_ATTRIBUTE_NOINLINE int64_t CondVarGroundTruthWaiter(lockprof::Mutex& mu, lockprof::CondVar& cv,
                                                         const bool& ready, bool& waiting,
                                                         int64_t* waited = nullptr) {
  Lock l(mu);
  waiting = true;  // Seen by a thread that then gets mu: we are in wait().
  const int64_t start = NowNanos();
  cv.wait(l, [&] { return ready; });
  if (waited != nullptr) *waited = NowNanos() - start;
  return start;
}

// A waiter waits ~20 ms for a notification sent after 20 ms, 6 times: the
// block profile has the waits at the waiter's function, within 5%, labelled
// with the CondVar's name; the mutex profile has none of it.
//
// A wait ends when the woken waiter runs again (before it re-locks), so
// its truth lies between the span from the waiter's start to the notify
// (it cannot end sooner) and what the waiter saw from its start to holding
// mu again (it cannot end later). The gap between the two is the wake-up
// latency, the re-lock and the recording: ~0.1 ms a round on a quiet
// machine, milliseconds under load, and ~6 ms for the first event under
// TSan, which measuring against either end alone would count as an error.
TEST(CondVarProfileTest, BlockProfileChargesTheWaiterExactly) {
  ScopedRates rates(1, 1, 0);
  lockprof::Mutex mu{"cv.truth.mutex"};
  lockprof::CondVar cv{"cv.truth"};
  ProfileDelta got("block", 1, "CondVarGroundTruthWaiter", {{"lock", "cv.truth"}});
  ProfileDelta in_mutex_profile("mutex", 1, "", {{"lock", "cv.truth"}});
  int64_t until_notified = 0, seen_by_waiter = 0;
  for (int round = 0; round < 6; ++round) {
    bool ready = false, waiting = false;
    int64_t start = 0, waited = 0;
    std::thread waiter([&] { start = CondVarGroundTruthWaiter(mu, cv, ready, waiting, &waited); });
    // Start the 20 ms only once the waiter waits (a loaded machine may start
    // the thread late).
    for (bool w = false; !w; std::this_thread::yield()) {
      Lock l(mu);
      w = waiting;
    }
    std::this_thread::sleep_for(milliseconds(20));
    {
      Lock l(mu);
      ready = true;
    }
    const int64_t notified = NowNanos();
    cv.notify_one();
    waiter.join();
    until_notified += notified - start;
    seen_by_waiter += waited;
  }
  EXPECT_GT(until_notified, 6 * 18'000'000);
  const int64_t charged = got.Get();
  EXPECT_GE(double(charged), 0.95 * double(until_notified));
  EXPECT_LE(charged, seen_by_waiter);
  EXPECT_EQ(in_mutex_profile.Get(), 0);

  // End to end: go tool pprof isolates the CondVar by its lock label.
  int status = 0;
  const std::string out = GoPprof(
      "-top -sample_index=delay -tagfocus=lock=cv.truth " + FetchProfileToFile("block"), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(TopFunction(out).find("CondVarGroundTruthWaiter"), std::string::npos) << out;
}

// An unnamed CondVar's waits carry the mutex's name.
TEST(CondVarProfileTest, UnnamedCondVarWaitsCarryTheMutexName) {
  ScopedRates rates(1, 1, 0);
  lockprof::Mutex mu{"cv.mutex.name"};
  lockprof::CondVar cv;
  ProfileDelta waits("block", 1, "CondVarGroundTruthWaiter", {{"lock", "cv.mutex.name"}});
  bool ready = false, waiting = false;
  std::thread waiter([&] { CondVarGroundTruthWaiter(mu, cv, ready, waiting); });
  for (bool w = false; !w; std::this_thread::yield()) {
    Lock l(mu);
    w = waiting;
  }
  std::this_thread::sleep_for(milliseconds(10));
  {
    Lock l(mu);
    ready = true;
    cv.notify_one();
  }
  waiter.join();
  EXPECT_GT(waits.Get(), 5'000'000);
}

}  // namespace
