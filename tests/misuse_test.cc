// Misuse of lockprof's primitives dies with a clear message, as Go's
// "sync: unlock of unlocked mutex", in every build (see each header's
// "Misuse" paragraph).
#include <gtest/gtest.h>

#include "lifecycle_util.h"

namespace {

using lockprof::testing::AllRatesAtOne;

TEST(MisuseDeathTest, UnlockOfNeverLockedMutex) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::Mutex mu{"misuse.never"};
  EXPECT_DEATH(mu.unlock(), "lockprof: unlock of unlocked Mutex\n");
}

// The second unlock of a pair, with and without a sampled hold (which sends
// the first unlock down the slow path and clears the hold state).
TEST(MisuseDeathTest, DoubleUnlockOfMutex) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::Mutex mu{"misuse.double"};
  mu.lock();
  mu.unlock();
  EXPECT_DEATH(mu.unlock(), "lockprof: unlock of unlocked Mutex");
  AllRatesAtOne rates;
  mu.lock();
  mu.unlock();
  EXPECT_DEATH(mu.unlock(), "lockprof: unlock of unlocked Mutex");
}

TEST(MisuseDeathTest, AssertHeldOfUnlockedMutex) {
  lockprof::Mutex mu;
  EXPECT_DEATH(mu.AssertHeld(), "lockprof: Mutex::AssertHeld: mutex is not locked");
}

// The lock stays usable after a correct sequence: the checks have no false
// positives with MutexLock and try_lock.
TEST(MisuseDeathTest, CorrectUseNeverDies) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  AllRatesAtOne rates;
  lockprof::Mutex mu;
  for (int i = 0; i < 100; ++i) {
    lockprof::MutexLock lock(&mu);
    mu.AssertHeld();
  }
  ASSERT_TRUE(mu.try_lock());
  mu.AssertHeld();
  mu.unlock();
}

}  // namespace
