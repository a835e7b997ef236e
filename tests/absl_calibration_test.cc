// ProfileAbslMutexes' calibration on a loaded machine: its waiter thread
// preempted for about half the traced wait between its timestamp and its
// Lock() (here: absl::Mutex::Lock, wrapped, sleeps 5 ms in the first call
// from another thread during the registration). The timing then comes out
// twice too long and within 10% of a power of two: taken alone, as before,
// it doubled every absl charge for the life of the process.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "absl_truth.h"
#include "lockprof/lockprof.h"
#include "lockprof/primitives/absl_mutex_profile.h"
#include "test_util.h"

namespace {
std::atomic<int> g_delays_left{0};
std::atomic<int> g_delayed{0};
pid_t g_main_tid = 0;
}  // namespace

#define LOCKPROF_STRINGIFY_(x) #x
#define LOCKPROF_STRINGIFY(x) LOCKPROF_STRINGIFY_(x)

// The program's definition comes before libabsl's: every Lock() of this
// program (lockprof's calibration included) comes here first, and goes on
// to libabsl's, found under its mangled name (Abseil's inline namespace
// included).
namespace absl {
ABSL_NAMESPACE_BEGIN
void Mutex::Lock() {
  using LockFn = void (*)(Mutex*);
  static const LockFn real = [] {
#if ABSL_OPTION_USE_INLINE_NAMESPACE
    const std::string ns = LOCKPROF_STRINGIFY(ABSL_OPTION_INLINE_NAMESPACE_NAME);
    const std::string name = "_ZN4absl" + std::to_string(ns.size()) + ns + "5Mutex4LockEv";
#else
    const std::string name = "_ZN4absl5Mutex4LockEv";
#endif
    return reinterpret_cast<LockFn>(dlsym(RTLD_NEXT, name.c_str()));
  }();
  if (pid_t(syscall(SYS_gettid)) != g_main_tid && g_delays_left.fetch_sub(1) > 0) {
    g_delayed.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // "Preempted."
  }
  real(this);
}
ABSL_NAMESPACE_END
}  // namespace absl

namespace {

TEST(AbslCalibrationTest, AWaiterPreemptedAtTheFirstTimingDoesNotDoubleEveryCharge) {
  g_main_tid = pid_t(syscall(SYS_gettid));
  g_delays_left = 1;  // The calibration's first waiter only.
  lockprof::ProfileAbslMutexes();
  g_delays_left = 0;
  ASSERT_EQ(g_delayed.load(), 1) << "the calibration was not delayed: nothing was tested";
  lockprof::testing::ScopedRates rates(1, 1, 0);
  lockprof::testing::ProfileDelta charged("mutex", 1, "AbslHolderSection",
                                          {{"lock", "g_absl_truth_mu"}});
  const int64_t truth = lockprof::testing::AbslTruthRounds(4);
  std::printf("absl after a delayed calibration: charged %.1f ms, truth %.1f ms\n",
              charged.Get() / 1e6, truth / 1e6);
  EXPECT_NEAR(double(charged.Get()), double(truth), 0.15 * double(truth));
}

}  // namespace
