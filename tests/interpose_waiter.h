// Helpers of the interposer's in-process tests (interpose_*_test.cc): a
// thread that blocks on a lock the test holds, deadlines, and two locks
// taken in order.
#ifndef LOCKPROF_TESTS_INTERPOSE_WAITER_H_
#define LOCKPROF_TESTS_INTERPOSE_WAITER_H_

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "test_util.h"

namespace lockprof::testing {

// An absolute deadline `ms` from now on `clock`.
inline timespec In(clockid_t clock, int ms) {
  timespec t;
  clock_gettime(clock, &t);
  t.tv_nsec += (ms % 1000) * 1000000L;
  t.tv_sec += ms / 1000 + t.tv_nsec / 1000000000L;
  t.tv_nsec %= 1000000000L;
  return t;
}

inline void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Runs `acquire` (which blocks on a lock the caller holds) on a new thread
// and returns once that thread sleeps in it; start() is when it called in.
class Waiter {
 public:
  template <typename F>
  explicit Waiter(F acquire) {
    thread_ = std::thread([this, acquire] {
      tid_ = ThisThreadId();
      start_ = NowNanos();
      result_ = acquire();
      done_ = NowNanos();
    });
    while (tid_.load() == 0 || !IsAsleep(tid_.load())) SleepMs(1);
  }
  int Join() {
    thread_.join();
    return result_;
  }
  int64_t start() const { return start_; }
  // When `acquire` returned (after Join).
  int64_t done() const { return done_; }

 private:
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  std::atomic<int64_t> start_{0};
  int64_t done_ = 0;
  int result_ = -1;
};

// Locks `first`, then `second`, and unlocks both, on the calling thread:
// the edge first -> second, while lock order is checked.
inline void TakeInOrder(pthread_mutex_t* first, pthread_mutex_t* second) {
  pthread_mutex_lock(first);
  pthread_mutex_lock(second);
  pthread_mutex_unlock(second);
  pthread_mutex_unlock(first);
}

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_INTERPOSE_WAITER_H_
