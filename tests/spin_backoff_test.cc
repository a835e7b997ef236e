// SpinBackoff: a waiter spins 111 pauses before it sleeps, polling the lock
// word only eleven times in that span; a Mutex waiter looks three times
// before it marks the lock wanted; the interposer's spins are shorter, and an
// rwlock's polls after every pause.
#include "lockprof/primitives/internal/spin_backoff.h"

#include "lockprof/primitives/interpose/interpose_common.h"

#include <gtest/gtest.h>

#include <vector>

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

// Polls made by a loop that tries after each Pause(), as the interposer's
// ContendedAcquire does.
int PollsAfterPauses(SpinBackoff spin) {
  int polls = 0;
  while (spin.Pause()) ++polls;
  return polls;
}

TEST(SpinBackoffTest, ABudgetAndAStepCapSetTheSchedule) {
  // After 1, 3, 7, 15, 31, 47 and 63 pauses.
  EXPECT_EQ(PollsAfterPauses(SpinBackoff(50)), 7);
  // One poll after every pause: its rwlock spin, 50 tries as before.
  EXPECT_EQ(PollsAfterPauses(SpinBackoff(50, 1)), 50);
}

// What a Mutex waiter does once it has marked the lock wanted (mutex.h):
// it polls after every pause for the rest of the same budget.
TEST(SpinBackoffTest, PollingEveryPauseKeepsTheBudget) {
  SpinBackoff spin;
  while (spin.spent() < 47) spin.Pause();  // Six polls: 1 + 2 + 4 + 8 + 16 + 16.
  EXPECT_EQ(spin.spent(), 47);
  spin.PollEveryPause();
  int polls = 0;
  while (spin.Pause()) ++polls;
  EXPECT_EQ(polls, 53);  // 48, 49, ... 100: one pause each, up to the budget.
  EXPECT_EQ(spin.spent(), 100);
}

// A Mutex waiter's spin (mutex.h): it looks at once, after 16 pauses and
// after 48, where it marks the lock wanted and from then on polls after
// every pause for the rest of the budget; a waiter that could not mark it
// (another had) keeps the 32-pause step.
TEST(SpinBackoffTest, AFirstStepSpacesTheEarlyLooks) {
  auto marked = SpinBackoff::Looking<16, 48>(SpinBackoff::kPauses);
  ASSERT_TRUE(marked.Pause());
  EXPECT_EQ(marked.spent(), 16);
  ASSERT_TRUE(marked.Pause());
  EXPECT_EQ(marked.spent(), 48);
  marked.PollEveryPause();
  int polls = 0;
  while (marked.Pause()) ++polls;
  EXPECT_EQ(polls, 52);  // 49, 50, ... 100.
  auto unmarked = SpinBackoff::Looking<16, 48>(SpinBackoff::kPauses);
  std::vector<int> at;
  while (unmarked.Pause()) at.push_back(unmarked.spent());
  EXPECT_EQ(at, (std::vector<int>{16, 48, 80, 112}));
}

// The interposer's mutex spin (interpose_common.h): after 16 pauses and
// after 48, then it sleeps.
TEST(SpinBackoffTest, TheInterposersMutexLooksTwice) {
  SpinBackoff spin = lockprof::interpose::MutexSpin();
  std::vector<int> at;
  while (spin.Pause()) at.push_back(spin.spent());
  EXPECT_EQ(at, (std::vector<int>{16, 48}));
}

}  // namespace
