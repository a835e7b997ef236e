// lockprof::Mutex against std::mutex, std::shared_mutex and absl::Mutex:
// uncontended lock+unlock (and lock_shared+unlock_shared where the type has
// it: std::shared_mutex, absl::Mutex's ReaderLock, lockprof::SharedMutex where
// the tree has it), and an empty
// critical section contended by 2 threads and every thread count up to the
// machine's (see bench_util.h), with lockprof's profiling off, at its default
// rates and with every rate at 1; and a short section with five times its
// length of work outside the lock, off and at the defaults.
//
// Names: "uncontended/<lock>", "uncontended_shared/<lock>",
// "uncontended_nested/<lock>" (the lock taken while holding another),
// "empty/<lock>[/lat]/real_time/threads:<n>",
// "think/<lock>[/lat]/real_time/threads:<n>". The "/lat" rows also time
// acquisitions (p50/p99/p99.9 counters: every one, or every k-th, evenly,
// where a thread makes more than 2^20) and so run a little slower;
// throughput ratios come from the rows without it.
#include <benchmark/benchmark.h>

#include <mutex>
#include <shared_mutex>
#include <string>

#include "bench_util.h"

namespace {

using bench::Profiling;

// Each lock's size, in the results' context: report.py prints them against
// the standard locks they replace.
const bool g_sizes_reported = [] {
  benchmark::AddCustomContext("sizeof:std::mutex", std::to_string(sizeof(std::mutex)));
  benchmark::AddCustomContext("sizeof:std::shared_mutex",
                              std::to_string(sizeof(std::shared_mutex)));
  benchmark::AddCustomContext("sizeof:absl::Mutex", std::to_string(sizeof(absl::Mutex)));
  benchmark::AddCustomContext("sizeof:lockprof::Mutex", std::to_string(sizeof(lockprof::Mutex)));
  benchmark::AddCustomContext("sizeof:lockprof::SharedMutex",
                              std::to_string(sizeof(lockprof::SharedMutex)));
  return true;
}();

template <typename M>
void BM_Uncontended(benchmark::State& state, Profiling p) {
  bench::ApplyProfiling(p);
  static M mu;
  for (auto _ : state) {
    bench::Lock(mu);
    benchmark::ClobberMemory();
    bench::Unlock(mu);
  }
}

template <typename M>
void BM_UncontendedShared(benchmark::State& state, Profiling p) {
  bench::ApplyProfiling(p);
  static M mu;
  for (auto _ : state) {
    bench::LockShared(mu);
    benchmark::ClobberMemory();
    bench::UnlockShared(mu);
  }
}

// Lock+unlock of one lock while holding another: what lock-order checking
// pays for an edge it has seen before (a thread-local lookup).
template <typename M>
void BM_UncontendedNested(benchmark::State& state, Profiling p) {
  bench::ApplyProfiling(p);
  static M outer, inner;
  bench::Lock(outer);
  for (auto _ : state) {
    bench::Lock(inner);
    benchmark::ClobberMemory();
    bench::Unlock(inner);
  }
  bench::Unlock(outer);
}

// A registry lock, then one of `entries` entry locks under it, in turn: a
// lock with that many edges out of it, more than a thread's cache of the
// edges it took keeps (256) once `entries` passes a few hundred.
void BM_RegistryEntry(benchmark::State& state, Profiling p) {
  bench::ApplyProfiling(p);
  static lockprof::Mutex registry;
  static lockprof::Mutex entries[3000];
  const int n = int(state.range(0));
  int i = 0;
  for (auto _ : state) {
    registry.lock();
    entries[i].lock();
    benchmark::ClobberMemory();
    entries[i].unlock();
    registry.unlock();
    i = i + 1 == n ? 0 : i + 1;
  }
}

// Iterations of a loop the compiler keeps and that touches no memory
// (about 0.25 ns each on the AMD EPYC the benchmarks ran on).
inline void Work(int iterations) {
  for (int i = 0; i < iterations; ++i) asm volatile("" ::: "memory");
}

// Every thread works kOutside iterations, takes the one lock exclusively,
// works kInside iterations and leaves. "empty" (0, 0): the holder re-takes
// the lock at once. "think" (1500, 300), as a service does between the
// locks it takes: the lock is often released early in a wait and not
// re-taken at once. Where the two disagree, a waiter's spin is the reason:
// looking at the lock word seldom pays on the empty section, and spinning
// long before a look costs the think rows' tail (BENCHMARKS.md, "Three
// looks before the mark").
template <typename M, bool kTimed, int kOutside, int kInside>
void BM_Section(benchmark::State& state, Profiling p) {
  // On lines of their own (see cache_bench.cc's Cache).
  alignas(64) static M mu;
  alignas(64) static std::atomic<const void*> last_owner{nullptr};
  if (state.thread_index() == 0) bench::ApplyProfiling(p);
  bench::ContendedLoop<kTimed>(
      state, mu, last_owner,
      [](uint64_t) {
        Work(kOutside);
        return true;
      },
      [](bool) { Work(kInside); });
}

// "<workload>/<lock>[/lat]" at the contended thread counts, for every lock
// and each of `settings` for lockprof's.
template <int kOutside, int kInside>
void RegisterSection(const std::string& workload, std::initializer_list<Profiling> settings) {
  // report.py titles the workload's tables with its work.
  if (kOutside != 0 || kInside != 0) {
    benchmark::AddCustomContext(
        "workload:" + workload,
        std::to_string(kInside) + " iterations inside, " + std::to_string(kOutside) + " outside");
  }
  for (bool timed : {false, true}) {
    bench::ForEachLock(true, settings, [&](auto type, const std::string& name, Profiling p) {
      using M = typename decltype(type)::type;
      auto* fn =
          timed ? BM_Section<M, true, kOutside, kInside> : BM_Section<M, false, kOutside, kInside>;
      bench::AtContendedThreadCounts(benchmark::RegisterBenchmark(
          (workload + "/" + name + (timed ? "/lat" : "")).c_str(), fn, p));
    });
  }
}

const bool registered = [] {
  using bench::kAll;
  using bench::kDefault;
  using bench::kOff;
  bench::ForEachLock(true, {kOff, kDefault, kAll, bench::kLockOrder},
                     [](auto type, const std::string& name, Profiling p) {
                       using M = typename decltype(type)::type;
                       benchmark::RegisterBenchmark(("uncontended/" + name).c_str(),
                                                    BM_Uncontended<M>, p);
                     });
  benchmark::RegisterBenchmark("uncontended_nested/std::mutex", BM_UncontendedNested<std::mutex>,
                               kOff);
  for (Profiling p : {kOff, kDefault, bench::kLockOrder}) {
    benchmark::RegisterBenchmark(
        (std::string("uncontended_nested/lockprof:") + bench::ProfilingName(p)).c_str(),
        BM_UncontendedNested<lockprof::Mutex>, p);
  }
  for (Profiling p : {kOff, bench::kLockOrder}) {
    benchmark::RegisterBenchmark(
        (std::string("registry_entry/lockprof:") + bench::ProfilingName(p)).c_str(),
        BM_RegistryEntry, p)
        ->Arg(2)
        ->Arg(100)
        ->Arg(1000)
        ->Arg(3000);
  }
  // Shared locking: the types that have it.
  bench::ForEachLock(true, {kOff, kDefault, kAll},
                     [](auto type, const std::string& name, Profiling p) {
                       using M = typename decltype(type)::type;
                       if (name == "std::mutex" || name.rfind("lockprof:", 0) == 0) return;
                       benchmark::RegisterBenchmark(("uncontended_shared/" + name).c_str(),
                                                    BM_UncontendedShared<M>, p);
                     });
  RegisterSection<0, 0>("empty", {kOff, kDefault, kAll});
  RegisterSection<1500, 300>("think", {kOff, kDefault});
  return true;
}();

}  // namespace
