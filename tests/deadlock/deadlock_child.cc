// What deadlock_test runs, with lockprof configured by its environment:
//   inversion  takes bank.a then bank.b on one thread, later bank.b then
//              bank.a on another: a lock-order inversion that never hangs
//   deadlock   two threads each take one of the two locks, then the other:
//              hangs for good (the test kills it)
//   self       a thread locks a mutex it holds; self-read: a thread takes
//              a read lock it holds while a writer waits for it. Both hang
//              that thread for good: once lock-order checking has reported
//              it (it would abort first in abort mode), the main thread
//              prints the report and exits.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "lockprof/lockprof.h"

namespace {

lockprof::Mutex g_a("bank.a");
lockprof::Mutex g_b("bank.b");
std::atomic<int> g_first_taken{0};

// Holds `first`, waits until the other thread holds its first too, then
// takes `second`.
void Take(lockprof::Mutex* first, lockprof::Mutex* second, bool meet) {
  lockprof::MutexLock l1(first);
  if (meet) {
    g_first_taken.fetch_add(1);
    while (g_first_taken.load() < 2) std::this_thread::yield();
  }
  lockprof::MutexLock l2(second);
}

__attribute__((noinline)) void TransferAThenB(bool meet) {
  pthread_setname_np(pthread_self(), "worker-ab");
  Take(&g_a, &g_b, meet);
  asm volatile("");
}

__attribute__((noinline)) void TransferBThenA(bool meet) {
  pthread_setname_np(pthread_self(), "worker-ba");
  Take(&g_b, &g_a, meet);
  asm volatile("");
}

lockprof::Mutex g_self("cache.self");
lockprof::SharedMutex g_table("cache.table");

// Wrong on purpose: what clang's thread-safety analysis rejects.
__attribute__((noinline)) void RelockOwnMutex() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  lockprof::MutexLock outer(&g_self);
  lockprof::MutexLock inner(&g_self);  // Never returns.
  asm volatile("");
}

// Holds a read lock, lets a writer queue for it, and reads again.
__attribute__((noinline)) void RereadWithWriterWaiting() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  g_table.lock_shared();
  std::thread([]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    g_table.lock();  // Waits for our read lock for good.
  }).detach();
  // Until the writer sleeps (it spins first, about 2 us): then a new read
  // lock queues behind it.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  g_table.lock_shared();  // Never returns.
  asm volatile("");
}

// Runs `hang` on a thread and waits for lock-order checking to report it.
int ReportSelfDeadlock(void (*hang)()) {
  std::thread(hang).detach();
  if (lockprof::LockOrderChecking() == lockprof::LockOrderMode::kAbort) {
    std::this_thread::sleep_for(std::chrono::seconds(30));  // Until the abort.
    return 1;
  }
  for (int i = 0; i < 1000 && lockprof::LockOrderInversions() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::string report = lockprof::LockOrderReport();
  std::fwrite(report.data(), 1, report.size(), stdout);
  std::printf("inversions %llu\n",
              static_cast<unsigned long long>(lockprof::LockOrderInversions()));
  std::fflush(stdout);
  _exit(0);  // The hung thread with it.
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  const bool deadlock = mode == "deadlock";
  std::printf("ready\n");
  std::fflush(stdout);
  if (mode == "self") return ReportSelfDeadlock(RelockOwnMutex);
  if (mode == "self-read") return ReportSelfDeadlock(RereadWithWriterWaiting);
  if (deadlock) {
    std::thread ab(TransferAThenB, true);
    std::thread ba(TransferBThenA, true);
    ab.join();  // Never returns.
    ba.join();
    return 1;
  }
  std::thread(TransferAThenB, false).join();
  std::thread(TransferBThenA, false).join();
  std::printf("done\n");
  return 0;
}
