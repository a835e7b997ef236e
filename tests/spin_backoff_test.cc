// SpinBackoff: a waiter spins 111 pauses before it sleeps, polling the lock
// word only eleven times in that span.
#include "lockprof/primitives/internal/spin_backoff.h"

#include <gtest/gtest.h>

namespace {

using lockprof::internal::SpinBackoff;

TEST(SpinBackoffTest, PollsElevenTimesInAboutAHundredPausesThenSleeps) {
  SpinBackoff spin;
  int polls = 0;
  do {
    ++polls;  // What a lock's spin loop does here: one load of its word.
  } while (spin.Pause());
  // After 0, 1, 3, 7, 15, 31, 47, 63, 79, 95 and 111 pauses; 111 >= 100.
  EXPECT_EQ(polls, 11);
  EXPECT_FALSE(spin.Pause());  // Spent: stays spent.
}

}  // namespace
