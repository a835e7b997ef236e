// A lock call leaves errno as it found it, as glibc's do: a program may
// read errno after an unrelated lock (`if (read(...) < 0) { MutexLock l(&mu);
// log(errno); }`). A waiter's futex sleep fails with EINTR when a signal
// comes (a CPU profiler's SIGPROF), and that reached the caller.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "lockprof/primitives/condvar.h"
#include "lockprof/primitives/mutex.h"
#include "lockprof/primitives/shared_mutex.h"
#include "test_util.h"

namespace {

constexpr int kMark = 12345;

void Ignore(int) {}

// Runs `wait` on a thread that set errno to kMark first; once it sleeps,
// interrupts it with a signal whose handler does not restart system calls,
// then lets it finish with `release`. Returns errno as `wait` left it.
int ErrnoAcross(const std::function<void()>& wait, const std::function<void()>& release) {
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = Ignore;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGUSR1, &ignore, &old);
  std::atomic<pid_t> tid{0};
  int after = 0;
  std::thread waiter([&] {
    tid = lockprof::testing::ThisThreadId();
    errno = kMark;
    wait();
    after = errno;
  });
  while (tid == 0) std::this_thread::yield();
  EXPECT_TRUE(lockprof::testing::WaitUntilAsleep(tid));
  pthread_kill(waiter.native_handle(), SIGUSR1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(lockprof::testing::WaitUntilAsleep(tid));  // Asleep again.
  release();
  waiter.join();
  sigaction(SIGUSR1, &old, nullptr);
  return after;
}

// Taken here and released by another function: outside -Wthread-safety.
template <typename Lock>
void Take(Lock& mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu.lock();
}
template <typename Lock>
void Release(Lock& mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu.unlock();
}

TEST(ErrnoTest, AContendedMutexLockLeavesErrnoAlone) {
  lockprof::Mutex mu;
  Take(mu);
  EXPECT_EQ(ErrnoAcross([&] { std::lock_guard<lockprof::Mutex> l(mu); }, [&] { Release(mu); }),
            kMark);
}

TEST(ErrnoTest, AContendedSharedMutexLockLeavesErrnoAlone) {
  lockprof::SharedMutex mu;
  Take(mu);
  EXPECT_EQ(
      ErrnoAcross([&] { std::unique_lock<lockprof::SharedMutex> l(mu); }, [&] { Release(mu); }),
      kMark);
  Take(mu);
  EXPECT_EQ(
      ErrnoAcross([&] { std::shared_lock<lockprof::SharedMutex> l(mu); }, [&] { Release(mu); }),
      kMark);
}

TEST(ErrnoTest, ACondVarWaitLeavesErrnoAlone) {
  lockprof::Mutex mu;
  lockprof::CondVar cv;
  bool ready = false;
  EXPECT_EQ(ErrnoAcross(
                [&] {
                  std::unique_lock<lockprof::Mutex> l(mu);
                  cv.wait(l, [&] { return ready; });
                },
                [&] {
                  {
                    std::lock_guard<lockprof::Mutex> l(mu);
                    ready = true;
                  }
                  cv.notify_one();
                }),
            kMark);
}

}  // namespace
