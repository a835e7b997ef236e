// lockprof::ProfileAbslMutexes against ground truth: a holder keeps a global
// absl::Mutex for 30 ms while one thread waits (Abseil charges a release the
// waits of the threads it wakes: one waiter makes that the whole truth), 8
// times, at mutex fraction 1.
#include "lockprof/primitives/absl_mutex_profile.h"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "absl_truth.h"
#include "lockprof/lockprof.h"
#include "lockprof/primitives/internal/cycle_scale.h"
#include "test_util.h"

// Set by the copy of lockprof that registered Abseil's tracer, before it
// calibrates: the first definition the dynamic linker finds, as
// absl_mutex_profile.cc claims it (liblockprof_preload.so's under
// LD_PRELOAD), else this program's.
extern "C" int lockprof_absl_tracer_registered;
bool TracerRegistered() {
  static int* const flag = [] {
    auto* found = static_cast<int*>(dlsym(RTLD_DEFAULT, "lockprof_absl_tracer_registered"));
    return found != nullptr ? found : &lockprof_absl_tracer_registered;
  }();
  return __atomic_load_n(flag, __ATOMIC_ACQUIRE) != 0;
}

// Called holding g_absl_truth_mu, with a waiter asleep on it, while another
// thread registers the tracer: unlocks as soon as the tracer is registered,
// while the calibration (two traced 10 ms waits at least) still runs.
// Returns the waiter's true wait; *calibrating: whether it still ran.
ABSL_ATTRIBUTE_NOINLINE int64_t CalibrationHolderSection(const std::atomic<int64_t>& waiter_start,
                                                         const std::atomic<bool>& registration_done,
                                                         bool* calibrating)
    ABSL_UNLOCK_FUNCTION(g_absl_truth_mu) {
  while (!TracerRegistered()) std::this_thread::yield();
  const int64_t unlock_at = lockprof::testing::NowNanos();
  g_absl_truth_mu.Unlock();
  *calibrating = !registration_done.load();
  return unlock_at - waiter_start.load();
}

namespace {

// A wait released while the registration still calibrates the clock's scale
// is charged once the scale is known, to the releaser's stack: it used to be
// charged nothing (its cycles times a scale of 0).
TEST(AbslMutexProfileTest, AWaitReleasedDuringTheCalibrationIsCharged) {
  lockprof::testing::ScopedRates rates(1, 1, 0);
  lockprof::testing::ProfileDelta holder("mutex", 1, "CalibrationHolderSection",
                                         {{"lock", "g_absl_truth_mu"}});
  std::atomic<pid_t> tid{0};
  std::atomic<int64_t> start{0};
  g_absl_truth_mu.Lock();
  std::thread waiter([&] {
    start = lockprof::testing::NowNanos();
    tid = pid_t(syscall(SYS_gettid));
    g_absl_truth_mu.Lock();
    g_absl_truth_mu.Unlock();
  });
  while (tid.load() == 0 || !lockprof::testing::IsAsleep(tid.load())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // A wait long against the waiter's start before its Lock().
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::atomic<bool> done{false};
  std::thread registration([&] {
    lockprof::ProfileAbslMutexes();
    done = true;
  });
  bool calibrating = false;
  const int64_t truth = CalibrationHolderSection(start, done, &calibrating);
  waiter.join();
  registration.join();
  ASSERT_TRUE(calibrating) << "released after the calibration: nothing was tested";
  std::printf("absl, released while calibrating: charged %.2f ms, truth %.2f ms\n",
              holder.Get() / 1e6, truth / 1e6);
  EXPECT_NEAR(double(holder.Get()), double(truth), 0.1 * double(truth));
}

TEST(AbslMutexProfileTest, ContentionChargedToTheHolderWithinTenPercent) {
  lockprof::ProfileAbslMutexes();
  lockprof::testing::ScopedRates rates(1, 1, 0);
  lockprof::testing::ProfileDelta holder("mutex", 1, "AbslHolderSection",
                                         {{"lock", "g_absl_truth_mu"}});
  lockprof::testing::ProfileDelta all("mutex", 1, "", {});
  const int64_t truth = lockprof::testing::AbslTruthRounds(8);
  const int64_t got = holder.Get();
  std::printf("absl: holder charged %.1f ms (all stacks %.1f ms), truth %.1f ms\n", got / 1e6,
              all.Get() / 1e6, truth / 1e6);
  EXPECT_GT(truth, 8 * 30'000'000LL);
  EXPECT_NEAR(double(got), double(truth), 0.1 * double(truth));
  // The holder's stack is first: nothing else is charged more.
  EXPECT_GT(double(got), 0.9 * double(all.Get()));
}

// The calibration's one timed wait only picks the power of two between the
// library's cycles and the header's: a timing 19% long (as a loaded
// sanitizer build once measured, and every charge then came out 19% high)
// or 25% short still gives the exact scale.
TEST(AbslMutexProfileTest, CalibrationSnapsToThePowerOfTwoBetweenTheBuilds) {
  using lockprof::internal::SnapCycleScale;
  const double header = 1e9 / 2.096e9;  // ns per cycle at a 2.096 GHz TSC.
  for (double factor : {0.25, 0.5, 1.0, 2.0, 4.0}) {
    for (double error : {0.75, 0.9, 1.0, 1.19, 1.35}) {
      EXPECT_DOUBLE_EQ(SnapCycleScale(header * factor * error, header), header * factor)
          << "factor " << factor << ", timing off by " << error;
    }
  }
  EXPECT_DOUBLE_EQ(SnapCycleScale(header * 64, header), header * 4);  // Clamped.
  EXPECT_DOUBLE_EQ(SnapCycleScale(0, header), header);                // No traced wait.
  EXPECT_DOUBLE_EQ(SnapCycleScale(-1, header), header);
}

}  // namespace
