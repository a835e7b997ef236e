// What liblockprof_preload.so adds to a program's own pthread locks: run
// once plainly and once with LD_PRELOAD (run.sh does both, interleaved).
// Knows nothing of lockprof. A second thread sleeps for the whole run, so
// that the process is multi-threaded as a real service is.
//
// Names: "uncontended/std::mutex", "uncontended/pthread_rwlock_wr",
// "uncontended/pthread_rwlock_rd" (one lock+unlock pair per iteration) and
// "contended/std::mutex/threads:2" (an empty critical section, two threads).
#include <benchmark/benchmark.h>
#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace {

// Keeps the process multi-threaded until exit.
const bool kSecondThread = [] {
  std::thread([] {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }).detach();
  return true;
}();

void BM_UncontendedStdMutex(benchmark::State& state) {
  static std::mutex mu;
  for (auto _ : state) {
    mu.lock();
    benchmark::ClobberMemory();
    mu.unlock();
  }
}
BENCHMARK(BM_UncontendedStdMutex)->Name("uncontended/std::mutex");

void BM_UncontendedRwWrite(benchmark::State& state) {
  static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
  for (auto _ : state) {
    pthread_rwlock_wrlock(&rw);
    benchmark::ClobberMemory();
    pthread_rwlock_unlock(&rw);
  }
}
BENCHMARK(BM_UncontendedRwWrite)->Name("uncontended/pthread_rwlock_wr");

void BM_UncontendedRwRead(benchmark::State& state) {
  static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
  for (auto _ : state) {
    pthread_rwlock_rdlock(&rw);
    benchmark::ClobberMemory();
    pthread_rwlock_unlock(&rw);
  }
}
BENCHMARK(BM_UncontendedRwRead)->Name("uncontended/pthread_rwlock_rd");

void BM_ContendedStdMutex(benchmark::State& state) {
  static std::mutex mu;
  static int64_t counter = 0;
  for (auto _ : state) {
    mu.lock();
    ++counter;
    mu.unlock();
  }
}
BENCHMARK(BM_ContendedStdMutex)->Name("contended/std::mutex")->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
