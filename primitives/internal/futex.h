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

#include "lockprof/agent/base/quiet_calls.h"

namespace lockprof::internal {

// Sleeps while *word == expected, until woken, until `timeout` (relative,
// CLOCK_MONOTONIC) passes, or spuriously. Returns false on timeout.
//
// Every wrapper here leaves errno as it found it: the system call sets it
// (EAGAIN when the word changed first, EINTR when a signal came, ETIMEDOUT),
// and a lock call must not (glibc's never do): agent::KeepErrno.
inline bool FutexWait(std::atomic<uint32_t>* word, uint32_t expected,
                      const timespec* timeout = nullptr) {
  const agent::KeepErrno keep;
  const long r = syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
                         timeout, nullptr, 0);
  return !(r == -1 && errno == ETIMEDOUT);
}

// Wakes up to `count` threads sleeping on `word`. Reads no memory at
// `word`: a private futex is keyed by its address alone, so an unlock may
// wake after its releasing store, when the lock may already be freed.
inline void FutexWake(std::atomic<uint32_t>* word, int count) {
  const agent::KeepErrno keep;
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr,
          0);
}

// The time on `clock` `ns` (>= 0) nanoseconds from now: an absolute deadline.
inline timespec ClockTimeAfter(clockid_t clock, int64_t ns) {
  timespec t;
  clock_gettime(clock, &t);
  const int64_t nsec = t.tv_nsec + ns % 1000000000;
  t.tv_sec += time_t(ns / 1000000000 + nsec / 1000000000);
  t.tv_nsec = long(nsec % 1000000000);
  return t;
}

// As FutexWait, but the sleeper is woken only by a FutexWakeBitset whose
// `bits` share a bit with its own: two kinds of sleepers share one word and
// are woken separately (FUTEX_BITSET_MATCH_ANY: by any wake). With
// `timeout_ns` > 0, it also returns once that much time has passed.
inline void FutexWaitBitset(std::atomic<uint32_t>* word, uint32_t expected, uint32_t bits,
                            int64_t timeout_ns = 0) {
  timespec deadline;
  const timespec* until = nullptr;
  if (timeout_ns > 0) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.
    deadline = ClockTimeAfter(CLOCK_MONOTONIC, timeout_ns);
    until = &deadline;
  }
  const agent::KeepErrno keep;
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_BITSET_PRIVATE, expected, until,
          nullptr, bits);
}

// Wakes up to `count` threads sleeping on `word` with a bit of `bits`.
// Like FutexWake, it reads no memory at `word` (a private futex is keyed by
// its address), so it may follow the release of the object `word` is in.
inline void FutexWakeBitset(std::atomic<uint32_t>* word, int count, uint32_t bits) {
  const agent::KeepErrno keep;
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_BITSET_PRIVATE, count, nullptr,
          nullptr, bits);
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
