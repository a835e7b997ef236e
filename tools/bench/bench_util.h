// Shared pieces of lockprof's benchmarks: the lock types compared, uniform
// lock/unlock spellings for them, lockprof's profiling settings, the thread
// counts contended benchmarks run at, and per-thread acquire-latency
// recording.
#ifndef LOCKPROF_TOOLS_BENCH_BENCH_UTIL_H_
#define LOCKPROF_TOOLS_BENCH_BENCH_UTIL_H_

#include <benchmark/benchmark.h>

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "lockprof/lockprof.h"

// lockprof::SharedMutex is benchmarked wherever the tree has it (it arrives
// on its own branch; this keeps the suite building on either side).
#if __has_include("lockprof/primitives/shared_mutex.h")
#include "lockprof/primitives/shared_mutex.h"
#define LOCKPROF_BENCH_HAVE_SHARED_MUTEX 1
#else
#define LOCKPROF_BENCH_HAVE_SHARED_MUTEX 0
#endif

namespace bench {

// lockprof's profiling settings, as benchmark arguments.
enum Profiling : int64_t {
  kOff = 0,        // Every profile off.
  kDefault = 1,    // The compiled-in defaults (mutex 10, block 10000 ns, hold 1000).
  kAll = 2,        // Every rate at 1: every contention, wait and hold recorded.
  kGoAll = 3,      // What Go calls "everything on": mutex fraction 1 and block
                   // rate 1, with the hold profile (which Go lacks) at its default.
  kLockOrder = 4,  // The defaults, with lock-order checking on (kReport), where
                   // the tree has it.
};
const char* ProfilingName(Profiling p);

// Applies `p` to the whole process, and makes the calling thread pick up the
// new hold rate on its next lock instead of at the end of its current stride.
void ApplyProfiling(Profiling p);

// Uniform spellings of exclusive and shared locking for the compared types.
template <typename M>
inline void Lock(M& m) {
  m.lock();
}
template <typename M>
inline void Unlock(M& m) {
  m.unlock();
}
template <>
inline void Lock(absl::Mutex& m) {
  m.Lock();
}
template <>
inline void Unlock(absl::Mutex& m) {
  m.Unlock();
}
// Shared locking where the type has it (lock_shared, or absl::Mutex's
// ReaderLock), exclusive otherwise: readers of the cache workload use these.
template <typename M>
inline auto LockSharedImpl(M& m, int) -> decltype(m.lock_shared()) {
  m.lock_shared();
}
template <typename M>
inline void LockSharedImpl(M& m, long) {
  Lock(m);
}
template <typename M>
inline auto UnlockSharedImpl(M& m, int) -> decltype(m.unlock_shared()) {
  m.unlock_shared();
}
template <typename M>
inline void UnlockSharedImpl(M& m, long) {
  Unlock(m);
}
template <typename M>
inline void LockShared(M& m) {
  LockSharedImpl(m, 0);
}
template <typename M>
inline void UnlockShared(M& m) {
  UnlockSharedImpl(m, 0);
}
template <>
inline void LockShared(absl::Mutex& m) {
  m.ReaderLock();
}
template <>
inline void UnlockShared(absl::Mutex& m) {
  m.ReaderUnlock();
}
// glibc's rwlock set to prefer writers: a waiting writer holds back new
// readers, as lockprof::SharedMutex (and Go's sync.RWMutex) do.
// std::shared_mutex is glibc's default rwlock, which prefers readers: in a
// read-mostly workload readers keep the lock shared while writers wait,
// which is more throughput and a starved writer. This row separates what
// the fairness costs from what lockprof's protocol does.
class WriterPreferringRwlock {
 public:
  WriterPreferringRwlock();
  ~WriterPreferringRwlock() { pthread_rwlock_destroy(&rw_); }
  WriterPreferringRwlock(const WriterPreferringRwlock&) = delete;
  WriterPreferringRwlock& operator=(const WriterPreferringRwlock&) = delete;
  void lock() { pthread_rwlock_wrlock(&rw_); }
  void unlock() { pthread_rwlock_unlock(&rw_); }
  void lock_shared() { pthread_rwlock_rdlock(&rw_); }
  void unlock_shared() { pthread_rwlock_unlock(&rw_); }

 private:
  pthread_rwlock_t rw_;
};

// Calls visit(Type<M>{}, name, profiling) for every compared lock: the
// std and Abseil locks (profiling kOff, which they ignore), then
// lockprof::Mutex at each of `lockprof_settings`. Names: "std::mutex",
// "std::shared_mutex" and "pthread_rwlock:prefer_writer" (only if
// with_shared_mutex), "absl::Mutex",
// "lockprof:<ProfilingName>", and, where lockprof::SharedMutex exists and
// with_shared_mutex, "lockprof_shared:<ProfilingName>".
template <typename M>
struct Type {
  using type = M;
};
template <typename Visitor>
void ForEachLock(bool with_shared_mutex, std::initializer_list<Profiling> lockprof_settings,
                 Visitor visit) {
  visit(Type<std::mutex>{}, std::string("std::mutex"), kOff);
  if (with_shared_mutex) {
    visit(Type<std::shared_mutex>{}, std::string("std::shared_mutex"), kOff);
    visit(Type<WriterPreferringRwlock>{}, std::string("pthread_rwlock:prefer_writer"), kOff);
  }
  visit(Type<absl::Mutex>{}, std::string("absl::Mutex"), kOff);
  for (Profiling p : lockprof_settings) {
    visit(Type<lockprof::Mutex>{}, std::string("lockprof:") + ProfilingName(p), p);
  }
#if LOCKPROF_BENCH_HAVE_SHARED_MUTEX
  if (with_shared_mutex) {
    for (Profiling p : lockprof_settings) {
      visit(Type<lockprof::SharedMutex>{}, std::string("lockprof_shared:") + ProfilingName(p), p);
    }
  }
#endif
}

// Thread counts for contended benchmarks: 2, then 4, 8, 16, ... up to the
// machine's hardware concurrency, and the hardware concurrency itself.
std::vector<int> ContendedThreadCounts();
// Registers `b` at every ContendedThreadCounts() count, timed in real time.
void AtContendedThreadCounts(benchmark::internal::Benchmark* b);

// A cheap timestamp (the TSC on x86-64) and its conversion to nanoseconds.
inline uint64_t Ticks() {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return uint64_t(absl::base_internal::CycleClock::Now());
#endif
}
double NanosPerTick();

// Per-thread acquire latencies of one benchmark run. Records at most
// kMaxSamples operations, evenly spread over the run's iterations, into a
// buffer allocated before the timed loop.
class LatencyRecorder {
 public:
  static constexpr size_t kMaxSamples = size_t{1} << 20;
  // For a run of `iterations` operations on this thread (0: records nothing).
  explicit LatencyRecorder(int64_t iterations);

  // Whether operation number `i` of this thread should be timed.
  bool ShouldTime(uint64_t i) const { return i % stride_ == 0; }
  void Add(uint64_t ticks) {
    if (n_ < ticks_.size()) ticks_[n_++] = ticks;
  }
  // Adds p50_ns, p99_ns, p999_ns and max_ns counters: this thread's
  // percentiles, averaged over the run's threads by the reporter.
  void Report(benchmark::State& state);

 private:
  uint64_t stride_;
  size_t n_ = 0;
  std::vector<uint64_t> ticks_;
};

// Counts how often the lock changed hands between threads: called inside the
// critical section with the lock's `last_owner` word, it costs one load and
// (on a hand-off) one store. Relaxed atomics: shared holders race benignly.
// Reported as "handoffs" per operation: near 0 means the threads did not
// actually run at the same time (on a busy machine they may take turns on
// one core), and the row measured no contention.
class HandoffCounter {
 public:
  void Note(std::atomic<const void*>& last_owner) {
    if (last_owner.load(std::memory_order_relaxed) != this) {
      last_owner.store(this, std::memory_order_relaxed);
      ++handoffs_;
    }
  }
  void Report(benchmark::State& state) const;

 private:
  int64_t handoffs_ = 0;
};

// The contended benchmarks' loop, shared by every workload: each operation
// takes `mu` exclusively if write(i) says so (shared otherwise, where M has
// shared locking), runs body(is_write) inside, and releases. With kTimed, the
// acquisition (from the call to the return of lock) is timed with Ticks().
template <bool kTimed, typename M, typename WriteFn, typename BodyFn>
void ContendedLoop(benchmark::State& state, M& mu, std::atomic<const void*>& last_owner,
                   WriteFn write, BodyFn body) {
  HandoffCounter handoffs;
  LatencyRecorder latency(kTimed ? state.max_iterations : 0);
  uint64_t i = 0;
  for (auto _ : state) {
    const bool is_write = write(i);
    const bool time_it = kTimed && latency.ShouldTime(i);
    const uint64_t t0 = time_it ? Ticks() : 0;
    if (is_write) {
      Lock(mu);
    } else {
      LockShared(mu);
    }
    const uint64_t t1 = time_it ? Ticks() : 0;
    handoffs.Note(last_owner);
    body(is_write);
    if (is_write) {
      Unlock(mu);
    } else {
      UnlockShared(mu);
    }
    // Stored after the release, so timing never lengthens the critical section.
    if (time_it) latency.Add(t1 - t0);
    ++i;
  }
  handoffs.Report(state);
  if (kTimed) latency.Report(state);
}

}  // namespace bench

#endif  // LOCKPROF_TOOLS_BENCH_BENCH_UTIL_H_
