// What deadlock_test runs, with lockprof configured by its environment:
//   inversion  takes bank.a then bank.b on one thread, later bank.b then
//              bank.a on another: a lock-order inversion that never hangs
//   deadlock   two threads each take one of the two locks, then the other:
//              hangs for good (the test kills it)
#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

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

}  // namespace

int main(int argc, char** argv) {
  const bool deadlock = argc > 1 && std::strcmp(argv[1], "deadlock") == 0;
  std::printf("ready\n");
  std::fflush(stdout);
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
