// A fixture for tests that take lock-order inversions on purpose: checking
// on in kReport for the test (whatever LOCKPROF_LOCK_ORDER says) and off
// again after, with a hook that records every inversion reported.
#ifndef LOCKPROF_TESTS_LOCK_ORDER_FIXTURE_H_
#define LOCKPROF_TESTS_LOCK_ORDER_FIXTURE_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lockprof/agent/lock_order.h"

namespace lockprof::testing {

class LockOrderFixture : public ::testing::Test {
 protected:
  // Runs `body` on a new thread (which starts tracking from its first
  // acquisition) and waits for it.
  static void OnThread(const std::function<void()>& body) { std::thread(body).join(); }

  // What the hook saw: how many inversions, and each edge as "from->to".
  static inline std::atomic<int> hook_calls{0};
  static inline std::vector<std::string> hook_edges;

  // Inversions reported since the test began (LockOrderInversions() counts
  // those of the whole process: of the binary's earlier tests too, when it
  // runs as one process).
  uint64_t NewInversions() const { return LockOrderInversions() - inversions_before_; }

  void SetUp() override {
    SetLockOrderChecking(LockOrderMode::kReport);
    SetLockOrderHook(RecordingHook);
    hook_calls = 0;
    hook_edges.clear();
    inversions_before_ = LockOrderInversions();
  }
  void TearDown() override {
    SetLockOrderHook(nullptr);
    SetLockOrderChecking(LockOrderMode::kOff);
  }

 private:
  uint64_t inversions_before_ = 0;

  static void RecordingHook(const LockOrderInversion& inv) {
    hook_calls.fetch_add(1);
    for (int i = 0; i < inv.num_edges; ++i) {
      hook_edges.push_back(std::string(inv.edges[i].from) + "->" + inv.edges[i].to);
      EXPECT_GT(inv.edges[i].stack_depth, 0);
      EXPECT_GT(inv.edges[i].thread_id, 0);
    }
  }
};

// LockOrderFixture with holders tracked (since when and where) as well.
class HeldTrackingFixture : public LockOrderFixture {
 protected:
  void SetUp() override {
    LockOrderFixture::SetUp();
    SetHeldLockTracking(true);
  }
  void TearDown() override {
    SetHeldLockTracking(false);
    LockOrderFixture::TearDown();
  }
};

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_LOCK_ORDER_FIXTURE_H_
