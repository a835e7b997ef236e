// ProfileAbslMutexes at the process's thread limit (a container's pids.max,
// RLIMIT_NPROC): its calibration's waiter thread cannot start. Before, the
// thread's std::system_error escaped from it: std::terminate for the
// preload library, which calls it before main. Its own binary, so that no
// earlier test has registered the tracer already.
#include <gtest/gtest.h>

#include <string>

#include "absl/synchronization/mutex.h"
#include "lifecycle_util.h"
#include "lockprof/primitives/absl_mutex_profile.h"

namespace {

TEST(AbslThreadLimitTest, RegistersWithoutItsCalibrationThread) {
  const auto child = lockprof::testing::RunInForkedChild(
      [](int out_fd) {
        if (const int failed = lockprof::testing::AtThreadLimit(); failed != 0) return failed;
        try {
          lockprof::ProfileAbslMutexes();
        } catch (const std::exception& e) {
          lockprof::testing::WriteAll(out_fd, std::string("threw: ") + e.what());
          return 1;
        }
        // The tracer is registered and absl::Mutex still works.
        absl::Mutex mu;
        mu.Lock();
        mu.Unlock();
        return 0;
      },
      60);
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0) << child.output << " (1: threw; 3-5: AtThreadLimit)";
}

}  // namespace
