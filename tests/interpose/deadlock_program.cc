// A program that knows nothing of lockprof, with two global std::mutexes
// taken in both orders (interpose_deadlock_test runs it under
// liblockprof_preload.so). Built like a distribution's binary: -O2, no frame
// pointers.
//   inversion       takes g_bank_a then g_bank_b on one thread, later
//                   g_bank_b then g_bank_a on another: never hangs
//   heap-inversion  the same with two mutexes on the heap
//   deadlock        two threads each take one lock, then the other: hangs
//                   for good (the test kills it)
#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

std::mutex g_bank_a;
std::mutex g_bank_b;

namespace {

std::atomic<int> g_first_taken{0};

// Holds `first`, waits until the other thread holds its first too (if
// `meet`), then takes `second`.
void Take(std::mutex* first, std::mutex* second, bool meet) {
  std::lock_guard<std::mutex> l1(*first);
  if (meet) {
    g_first_taken.fetch_add(1);
    while (g_first_taken.load() < 2) std::this_thread::yield();
  }
  std::lock_guard<std::mutex> l2(*second);
}

__attribute__((noinline)) void TransferAThenB(std::mutex* a, std::mutex* b, bool meet) {
  pthread_setname_np(pthread_self(), "worker-ab");
  Take(a, b, meet);
  asm volatile("");
}

__attribute__((noinline)) void TransferBThenA(std::mutex* a, std::mutex* b, bool meet) {
  pthread_setname_np(pthread_self(), "worker-ba");
  Take(b, a, meet);
  asm volatile("");
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "inversion";
  std::printf("ready\n");
  std::fflush(stdout);
  if (std::strcmp(mode, "deadlock") == 0) {
    std::thread ab(TransferAThenB, &g_bank_a, &g_bank_b, true);
    std::thread ba(TransferBThenA, &g_bank_a, &g_bank_b, true);
    ab.join();  // Never returns.
    ba.join();
    return 1;
  }
  std::unique_ptr<std::mutex> heap_a, heap_b;
  std::mutex* a = &g_bank_a;
  std::mutex* b = &g_bank_b;
  if (std::strcmp(mode, "heap-inversion") == 0) {
    heap_a = std::make_unique<std::mutex>();
    heap_b = std::make_unique<std::mutex>();
    a = heap_a.get();
    b = heap_b.get();
  }
  std::thread(TransferAThenB, a, b, false).join();
  std::thread(TransferBThenA, a, b, false).join();
  std::printf("done\n");
  return 0;
}
