// Thin wrappers over the Linux futex system call (private futexes).
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_FUTEX_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_FUTEX_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

namespace lockprof::internal {

// Sleeps while *word == expected, until woken, until `timeout` (relative,
// CLOCK_MONOTONIC) passes, or spuriously. Returns false on timeout.
inline bool FutexWait(std::atomic<uint32_t>* word, uint32_t expected,
                      const timespec* timeout = nullptr) {
  long r = syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
                   timeout, nullptr, 0);
  return !(r == -1 && errno == ETIMEDOUT);
}

// Wakes up to `count` threads sleeping on `word`.
inline void FutexWake(std::atomic<uint32_t>* word, int count) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr,
          0);
}

// A CPU hint for spin loops.
inline void SpinPause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_FUTEX_H_
