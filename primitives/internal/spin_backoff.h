// SpinBackoff: how a lock's waiter spins before it sleeps.
//
// A waiter spins in the hope that the holder releases soon: a short critical section ends sooner
// than a futex sleep and wake-up. By default it spins 111 pause instructions (about 2 us on the
// AMD EPYC the benchmarks ran on), but polls the lock word only eleven times in that span, at
// intervals that double up to 16 pauses (exponential backoff). Each poll pulls the lock's cache
// line to the waiter's core in shared state, and the holder's next atomic update on the lock (its
// release, its next acquisition) must then take the line back: a waiter polling after every pause
// kept the line moving and slowed the very holder it waited for. Backing off made an empty
// critical section 1.2-1.6x faster at 2-16 threads on 2 cores (BENCHMARKS.md, "Spinning with
// backoff", which also has the spins tried and not kept: shorter ones trade throughput for a
// shorter tail). A lock may start with a longer first step: Mutex's waiter looks at once, after 16
// pauses and after 48 (mutex.h), because the looks early in a wait land while a new holder works.
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_SPIN_BACKOFF_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_SPIN_BACKOFF_H_

#include "lockprof/primitives/internal/futex.h"

namespace lockprof::internal {

class SpinBackoff {
 public:
  // The spin ends at the first step that reaches this many pauses: 111 with
  // these steps (1, 2, 4, 8, then 16s).
  static constexpr int kPauses = 100;
  static constexpr int kMaxStep = 16;  // Pauses between two polls, at most.

  // A spin that ends at the first step reaching `pauses`, polling first
  // after `first_step` pauses, then at intervals that double up to `max_step`
  // pauses (max_step 1: after every pause, no backoff).
  explicit SpinBackoff(int pauses = kPauses, int max_step = kMaxStep, int first_step = 1)
      : pauses_(pauses), max_step_(max_step), step_(first_step) {}

  // A spin that polls after kFirst pauses and after kSecond, then every
  // kSecond - kFirst, until a step reaches `pauses`. The step doubles once,
  // from kFirst to the cap, so kSecond must be three first steps.
  template <int kFirst, int kSecond>
  static SpinBackoff Looking(int pauses) {
    static_assert(kFirst > 0 && kSecond == 3 * kFirst, "the second poll must land on kSecond");
    return SpinBackoff(pauses, /*max_step=*/kSecond - kFirst, /*first_step=*/kFirst);
  }

  // Pauses until the next poll. False once the spin is over: time to sleep.
  bool Pause() {
    if (spent_ >= pauses_) return false;
    for (int i = 0; i < step_; ++i) SpinPause();
    spent_ += step_;
    if (step_ < max_step_) step_ *= 2;
    return true;
  }

  // Pauses spent so far.
  int spent() const { return spent_; }

  // From now on, polls after every pause (the budget is unchanged).
  void PollEveryPause() { step_ = max_step_ = 1; }

 private:
  int pauses_;
  int max_step_;
  int spent_ = 0;
  int step_;
};

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_SPIN_BACKOFF_H_
