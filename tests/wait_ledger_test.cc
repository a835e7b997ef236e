// WaitLedger's arithmetic: each release is charged exactly the waiting done
// during its critical section, and every nanosecond of waiting is charged
// once, however the settles fall.
#include "lockprof/primitives/internal/wait_ledger.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace {

using lockprof::internal::WaitLedger;

TEST(WaitLedgerTest, SettleChargesEachWaiterSinceTheLaterOfItsStartAndTheLastSettle) {
  WaitLedger<2> ledger;
  ledger.Enter(0, 100);
  ledger.Enter(0, 150);
  ledger.Enter(1, 120);
  int64_t first[2] = {0, 0};
  ledger.Settle(200, first);
  EXPECT_EQ(first[0], 100 + 50);
  EXPECT_EQ(first[1], 80);
  // The next release is charged only what came after the first.
  int64_t second[2] = {0, 0};
  ledger.Settle(260, second);
  EXPECT_EQ(second[0], 2 * 60);
  EXPECT_EQ(second[1], 60);
}

// A release that settles twice (SharedMutex's writer settles again when its
// releasing update fails because a reader queued meanwhile) must be charged
// the sum: the same as one settle at the later time. A ledger that assigned
// instead of adding charged 180 here and lost the first settle's 230.
TEST(WaitLedgerTest, SettlingTwiceInOneReleaseChargesTheSum) {
  WaitLedger<2> once;
  WaitLedger<2> twice;
  for (WaitLedger<2>* l : {&once, &twice}) {
    l->Enter(0, 100);
    l->Enter(0, 150);
    l->Enter(1, 120);
  }
  int64_t one[2] = {0, 0};
  once.Settle(260, one);
  int64_t two[2] = {0, 0};
  twice.Settle(200, two);
  twice.Settle(260, two);
  EXPECT_EQ(two[0], one[0]);
  EXPECT_EQ(two[1], one[1]);
  EXPECT_EQ(two[0] + two[1], 160 + 110 + 140);
}

// A waiter that enters with a start before the last settle (it read the
// clock, then a release settled, then it entered) and one that leaves after
// a settle are both counted from that settle: the ledger stays balanced and
// nothing is charged twice.
TEST(WaitLedgerTest, EnterAndLeaveAroundASettleStayBalanced) {
  WaitLedger<1> ledger;
  ledger.Enter(0, 100);
  int64_t charged[1] = {0};
  ledger.Settle(200, charged);
  EXPECT_EQ(charged[0], 100);
  ledger.Enter(0, 150);  // Started before the settle: counted from 200.
  ledger.Leave(0, 100, [] {});
  int64_t next[1] = {0};
  ledger.Settle(300, next);
  EXPECT_EQ(next[0], 100);  // Only the second waiter, 200..300.
  bool last = false;
  ledger.Leave(0, 150, [&] { last = true; });
  EXPECT_TRUE(last);
  int64_t empty[1] = {0};
  ledger.Settle(400, empty);
  EXPECT_EQ(empty[0], 0);
}

}  // namespace
