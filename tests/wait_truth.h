// The block profile's ground truth for one round of waiters behind a holder.
//
// lockprof ends a lock wait at the release that let the waiter in (the
// waiter table's "Where a wait ends"), not when the woken waiter runs: the
// scheduler's latency in between is not the lock's, and on a loaded machine
// or under a sanitizer it is milliseconds. So a waiter's truth runs from its
// call to lock() to that release: the holder's, or, for exclusive waiters
// let in one after another, the previous waiter's. Readers behind a writer
// are all let in by the writer's release.
#ifndef LOCKPROF_TESTS_WAIT_TRUTH_H_
#define LOCKPROF_TESTS_WAIT_TRUTH_H_

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace lockprof::testing {

// One waiter: when it called lock(), got the lock, and called unlock().
struct WaiterTimes {
  int64_t start = 0;
  int64_t acquired = 0;
  int64_t released = 0;
};

// The sum of the waits of `waiters`, each up to the release that let it in.
inline int64_t WaitsUntilLetIn(int64_t holder_release, const std::vector<WaiterTimes>& waiters,
                               bool exclusive) {
  std::vector<size_t> order(waiters.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return waiters[a].acquired < waiters[b].acquired; });
  int64_t let_in = holder_release, total = 0;
  for (size_t w : order) {
    total += std::max<int64_t>(0, let_in - waiters[w].start);
    if (exclusive) let_in = waiters[w].released;
  }
  return total;
}

// The sum of the waits of `waiters` up to their acquisitions: an upper
// bound of the above, which adds each waiter's wake-up.
inline int64_t WaitsUntilAcquired(const std::vector<WaiterTimes>& waiters) {
  int64_t total = 0;
  for (const WaiterTimes& w : waiters) total += w.acquired - w.start;
  return total;
}

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_WAIT_TRUTH_H_
