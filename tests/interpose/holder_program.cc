// An unmodified program (no lockprof, built without frame pointers at -O2)
// with a known lock holder, for interpose_test: a holder keeps a global
// std::mutex for 30 ms while three threads wait, 8 times, and prints the
// true charges (the profile-accuracy test's ground truth): the mutex
// profile owes HolderSection every waiter's wait up to the unlock, the
// block profile owes WaiterLock each wait up to the release that let it in
// (where lockprof ends a wait: the waker's latency is not the lock's), and
// the whole waits, to the acquisitions, bound it. Then it prints "ready" and
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
    std::vector<int64_t> starts(kWaiters), acquired(kWaiters), released(kWaiters);
    std::thread holder([&] { HolderSection(kHoldNs, &ready, &unlock_at); });
    std::vector<std::thread> waiters;
    for (int w = 0; w < kWaiters; ++w) {
      waiters.emplace_back([&, w] {
        while (ready.load() != -1) std::this_thread::yield();
        acquired[w] = WaiterLock(&starts[w], &released[w]);
      });
    }
    holder.join();
    for (auto& t : waiters) t.join();
    // In the order they acquired: each was let in by the previous release.
    std::vector<int> order(kWaiters);
    for (int w = 0; w < kWaiters; ++w) order[w] = w;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return acquired[a] < acquired[b]; });
    int64_t let_in = unlock_at;
    for (int w : order) {
      mutex_truth += std::max<int64_t>(0, unlock_at - starts[w]);
      block_truth += std::max<int64_t>(0, let_in - starts[w]);
      block_until_acquired += acquired[w] - starts[w];
      let_in = released[w];
    }
  }
  std::printf("mutex_truth_ns=%lld block_truth_ns=%lld block_until_acquired_ns=%lld\nready\n",
              (long long)mutex_truth, (long long)block_truth, (long long)block_until_acquired);
  std::fflush(stdout);
  for (;;) pause();
}
