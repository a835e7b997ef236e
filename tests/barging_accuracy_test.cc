// The mutex profile charges a sleeper's waiting to every critical section it
// waited through, also those of a thread that barged in past it: an unlock
// wakes the sleeper, the unlocking thread takes the lock again before the
// sleeper runs, and so on for many sections. Each of those releases must
// settle the sleeper's waiting; a lock that lets a barger's unlock take the
// fast path (it took the lock as if nobody slept) charges that waiting to
// nobody once the sleeper finally gets in.
//
// The sleeper is kept from running while the barger works: both are pinned
// to one CPU, the sleeper at SCHED_IDLE. Ground truth: the sleeper waited
// during the barger's sections from its lock() call to the barger's last
// unlock; the mutex profile must charge that, within 5%, to the barger.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/base/attributes.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::IsAsleep;
using lockprof::testing::NowNanos;
using lockprof::testing::ProfileDelta;
using lockprof::testing::ScopedRates;

void BusyFor(int64_t ns) {
  const int64_t end = NowNanos() + ns;
  while (NowNanos() < end) {
  }
}

// Pins the calling thread to `cpu`.
void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
}

int FirstAllowedCpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) return cpu;
  }
  return 0;
}

// The barger: takes the lock (then sets `locked`), holds it until the
// sleeper sleeps, then for ~40 ms releases and re-takes it every 50 us;
// returns the time of its last unlock. Its releases are the ones the mutex
// profile must charge.
template <typename Lock>
ABSL_ATTRIBUTE_NOINLINE int64_t BargerSections(Lock& mu, std::atomic<bool>& locked,
                                               const std::atomic<pid_t>& sleeper) {
  mu.lock();
  locked = true;
  while (sleeper.load() == 0 || !IsAsleep(sleeper.load())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int64_t end = NowNanos() + 40'000'000;
  while (NowNanos() < end) {
    mu.unlock();
    mu.lock();
    BusyFor(50'000);
  }
  const int64_t last_unlock = NowNanos();
  mu.unlock();
  return last_unlock;
}

template <typename Lock>
void ExpectBargersSettle(const char* name) {
  ScopedRates rates(1, 1, 0);
  ProfileDelta charged("mutex", 1, "BargerSections", {{"lock", name}});
  Lock mu{name};
  const int cpu = FirstAllowedCpu();
  std::atomic<pid_t> sleeper_tid{0};
  std::atomic<bool> locked{false};
  int64_t sleeper_start = 0, last_unlock = 0;
  std::thread barger([&] {
    PinTo(cpu);
    last_unlock = BargerSections(mu, locked, sleeper_tid);
  });
  while (!locked.load()) std::this_thread::yield();
  std::thread sleeper([&] {
    PinTo(cpu);
    sched_param idle{};
    ASSERT_EQ(pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle), 0);
    sleeper_start = NowNanos();
    sleeper_tid = pid_t(syscall(SYS_gettid));
    mu.lock();
    mu.unlock();
  });
  barger.join();
  sleeper.join();
  const int64_t truth = last_unlock - sleeper_start;
  EXPECT_GT(truth, 40'000'000);
  EXPECT_NEAR(double(charged.Get()), double(truth), 0.05 * double(truth));
}

TEST(BargingAccuracyTest, MutexChargesEverySectionASleeperWaitedThrough) {
  ExpectBargersSettle<lockprof::Mutex>("barging.mutex");
}

TEST(BargingAccuracyTest, SharedMutexChargesEverySectionAWriterWaitedThrough) {
  ExpectBargersSettle<lockprof::SharedMutex>("barging.shared");
}

}  // namespace
