// An unmodified program (no lockprof, built without frame pointers at -O2)
// with a known lock holder, for interpose_test: a holder keeps a global
// std::mutex for 30 ms while three threads wait, 8 times, and prints the
// true charges (the profile-accuracy test's ground truth): the mutex
// profile owes HolderSection every waiter's wait up to the unlock, the
// block profile owes WaiterLock each wait up to the release that let it in
// (where lockprof ends a wait: tests/wait_truth.h, header-only, so this
// program still links nothing of lockprof's), and the whole waits, to the
// acquisitions, bound it. Then it prints "ready" and
// sleeps until killed, so that the test can read its profiles.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "../wait_truth.h"

std::mutex g_truth_mu;

namespace {

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The work after unlock() keeps the unlock from being a tail call, which
// would charge this function's caller (as any profiler would).
__attribute__((noinline)) int64_t HolderSection(int64_t hold_ns, std::atomic<int>* ready,
                                                int64_t* unlock_at) {
  g_truth_mu.lock();
  ready->store(-1);
  std::this_thread::sleep_for(std::chrono::nanoseconds(hold_ns));
  *unlock_at = Now();
  g_truth_mu.unlock();
  return Now() - *unlock_at;
}

// Returns when it acquired the lock; *released is when it let the next in.
__attribute__((noinline)) int64_t WaiterLock(int64_t* start, int64_t* released) {
  *start = Now();
  g_truth_mu.lock();
  const int64_t acquired = Now();
  *released = Now();
  g_truth_mu.unlock();
  return acquired + (Now() & 0);
}

}  // namespace

int main() {
  constexpr int kRounds = 8, kWaiters = 3;
  constexpr int64_t kHoldNs = 30'000'000;
  int64_t mutex_truth = 0, block_truth = 0, block_until_acquired = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> ready{0};
    int64_t unlock_at = 0;
    std::vector<lockprof::testing::WaiterTimes> times(kWaiters);
    std::thread holder([&] { HolderSection(kHoldNs, &ready, &unlock_at); });
    std::vector<std::thread> waiters;
    for (int w = 0; w < kWaiters; ++w) {
      waiters.emplace_back([&, w] {
        while (ready.load() != -1) std::this_thread::yield();
        times[w].acquired = WaiterLock(&times[w].start, &times[w].released);
      });
    }
    holder.join();
    for (auto& t : waiters) t.join();
    for (const auto& t : times) mutex_truth += std::max<int64_t>(0, unlock_at - t.start);
    block_truth += lockprof::testing::WaitsUntilLetIn(unlock_at, times, /*exclusive=*/true);
    block_until_acquired += lockprof::testing::WaitsUntilAcquired(times);
  }
  std::printf("mutex_truth_ns=%lld block_truth_ns=%lld block_until_acquired_ns=%lld\nready\n",
              (long long)mutex_truth, (long long)block_truth, (long long)block_until_acquired);
  std::fflush(stdout);
  for (;;) pause();
}
