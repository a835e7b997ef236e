// Known absl::Mutex contention, for the tests of ProfileAbslMutexes: a
// holder keeps a global absl::Mutex for 30 ms while one thread waits
// (Abseil charges a release the waits of the threads it wakes: one waiter
// makes that the whole truth).
#ifndef LOCKPROF_TESTS_ABSL_TRUTH_H_
#define LOCKPROF_TESTS_ABSL_TRUTH_H_

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "test_util.h"

inline absl::Mutex g_absl_truth_mu(absl::kConstInit);

namespace lockprof::testing {

// Called holding g_absl_truth_mu: waits until the waiter sleeps in
// absl::Mutex (after its spin), holds 30 ms more and unlocks. Returns the
// waiter's true wait up to the unlock.
__attribute__((noinline)) inline int64_t AbslHolderSection(const std::atomic<pid_t>& waiter,
                                                           const std::atomic<int64_t>& waiter_start)
    ABSL_UNLOCK_FUNCTION(g_absl_truth_mu) {
  while (waiter.load() == 0 || !IsAsleep(waiter.load())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const int64_t unlock_at = NowNanos();
  g_absl_truth_mu.Unlock();
  asm volatile("");  // Not a tail call: this frame is the one charged.
  return unlock_at - waiter_start.load();
}

// `rounds` such waits, one after another; their true total.
inline int64_t AbslTruthRounds(int rounds) {
  int64_t truth = 0;
  for (int round = 0; round < rounds; ++round) {
    std::atomic<pid_t> tid{0};
    std::atomic<int64_t> start{0};
    g_absl_truth_mu.Lock();
    std::thread waiter([&] {
      start = NowNanos();
      tid = pid_t(syscall(SYS_gettid));
      g_absl_truth_mu.Lock();
      g_absl_truth_mu.Unlock();
    });
    truth += AbslHolderSection(tid, start);
    waiter.join();
  }
  return truth;
}

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_ABSL_TRUTH_H_
