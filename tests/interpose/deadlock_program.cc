// A program that knows nothing of lockprof, with two global std::mutexes
// taken in both orders (interpose_deadlock_test runs it under
// liblockprof_preload.so). Built like a distribution's binary: -O2, no frame
// pointers.
//   inversion       takes g_bank_a then g_bank_b on one thread, later
//                   g_bank_b then g_bank_a on another: never hangs
//   heap-inversion  the same with two mutexes on the heap
//   deadlock        two threads each take one lock, then the other: hangs
//                   for good (the test kills it)
//   relock          a thread holding g_bank_a calls a function that takes
//                   it again: hangs for good
//   stall           a thread holds g_bank_a for 1 s, then g_table (an
//                   rwlock) for 0.6 s, while another waits for them: in a
//                   100 ms and a 400 ms timedlock, a lock, and a rdlock
//   backoff         one thread holding g_bank_a takes g_bank_b and g_table
//                   in timed calls (a program that backs off when they time
//                   out): once while another thread holds g_bank_b, so that
//                   it waits, once not; later another thread takes them
//                   without a deadline, then g_bank_a: cannot hang
//   dlopen-fork LIB  main holds g_bank_b; a thread dlopen()s LIB, whose
//                   constructor (constructor_plugin.cc) takes g_bank_a,
//                   then waits for g_bank_b, holding the loader's lock;
//                   another thread waits for g_bank_a (a stall); after 1.5 s
//                   main fork()s, then lets go of g_bank_b
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

std::mutex g_bank_a;
std::mutex g_bank_b;
pthread_rwlock_t g_table = PTHREAD_RWLOCK_INITIALIZER;

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

std::atomic<int> g_held{0};

__attribute__((noinline)) void HoldAccount(int ms) {
  pthread_setname_np(pthread_self(), "holder");
  {
    std::lock_guard<std::mutex> l(g_bank_a);
    g_held = 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  }
  asm volatile("");
}

__attribute__((noinline)) void HoldTable(int ms) {
  pthread_setname_np(pthread_self(), "holder");
  pthread_rwlock_wrlock(&g_table);
  g_held = 2;
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  pthread_rwlock_unlock(&g_table);
  asm volatile("");
}

int64_t MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

// `now` plus `ms` milliseconds on `clock`.
timespec After(clockid_t clock, int ms) {
  timespec t;
  clock_gettime(clock, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec += 1;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

// Waits for g_bank_a `ms` milliseconds in pthread_mutex_timedlock.
void TimedWait(int ms) {
  const timespec until = After(CLOCK_REALTIME, ms);
  const auto start = std::chrono::steady_clock::now();
  const int r = pthread_mutex_timedlock(g_bank_a.native_handle(), &until);
  std::printf("timedlock %d ms: %s after %lld ms\n", ms, r == ETIMEDOUT ? "ETIMEDOUT" : "other",
              static_cast<long long>(MillisSince(start)));
  std::fflush(stdout);
}

__attribute__((noinline)) void WaitForBoth() {
  pthread_setname_np(pthread_self(), "waiter");
  std::thread holder(HoldAccount, 1000);
  while (g_held != 1) std::this_thread::yield();
  TimedWait(100);  // Ends before the watchdog's threshold.
  TimedWait(400);  // Outlasts it, then times out.
  auto start = std::chrono::steady_clock::now();
  g_bank_a.lock();
  g_bank_a.unlock();
  std::printf("lock after %lld ms\n", static_cast<long long>(MillisSince(start)));
  holder.join();
  std::thread table_holder(HoldTable, 600);
  while (g_held != 2) std::this_thread::yield();
  start = std::chrono::steady_clock::now();
  const int r = pthread_rwlock_rdlock(&g_table);
  pthread_rwlock_unlock(&g_table);
  std::printf("rdlock %d after %lld ms\n", r, static_cast<long long>(MillisSince(start)));
  table_holder.join();
}

// relock: the helper takes the lock its caller holds already.
__attribute__((noinline)) void AuditAccount() {
  std::lock_guard<std::mutex> l(g_bank_a);
  asm volatile("");
}

__attribute__((noinline)) void TransferThenAudit() {
  pthread_setname_np(pthread_self(), "auditor");
  std::lock_guard<std::mutex> l(g_bank_a);
  AuditAccount();
  asm volatile("");
}

// dlopen-fork: see the top. The fork() must not wait for anything the
// loader's lock holds up (a symbolization in progress, which fork() waits
// for, must not wait for the loader's lock).
int DlopenThenFork(const char* library) {
  char addresses[64];
  std::snprintf(addresses, sizeof addresses, "%p,%p", static_cast<void*>(g_bank_a.native_handle()),
                static_cast<void*>(g_bank_b.native_handle()));
  setenv("LOCKPROF_TEST_CONSTRUCTOR_MUTEX", addresses, 1);
  g_bank_b.lock();
  std::thread loader([library] {
    if (dlopen(library, RTLD_NOW) == nullptr) std::printf("dlopen: %s\n", dlerror());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::thread waiter([] { std::lock_guard<std::mutex> l(g_bank_a); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  std::printf("forking\n");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  g_bank_b.unlock();
  loader.join();
  waiter.join();
  std::printf("done\n");
  return 0;
}

// Holding g_bank_a, takes g_bank_b and g_table with deadlines (and would
// let go of g_bank_a and try again if they passed).
__attribute__((noinline)) void TakeWithDeadlines() {
  std::lock_guard<std::mutex> l(g_bank_a);
  timespec until = After(CLOCK_REALTIME, 5000);
  if (pthread_mutex_timedlock(g_bank_b.native_handle(), &until) == 0) g_bank_b.unlock();
  until = After(CLOCK_MONOTONIC, 5000);
  if (pthread_mutex_clocklock(g_bank_b.native_handle(), CLOCK_MONOTONIC, &until) == 0) {
    g_bank_b.unlock();
  }
  until = After(CLOCK_REALTIME, 5000);
  if (pthread_rwlock_timedwrlock(&g_table, &until) == 0) pthread_rwlock_unlock(&g_table);
  asm volatile("");
}

int Backoff() {
  std::thread holder([] {
    std::lock_guard<std::mutex> l(g_bank_b);
    g_held = 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  });
  while (g_held.load() == 0) std::this_thread::yield();
  std::thread(TakeWithDeadlines).join();  // Waits for g_bank_b at first.
  holder.join();
  std::thread([] {
    std::lock_guard<std::mutex> l(g_bank_b);
    std::lock_guard<std::mutex> l2(g_bank_a);
  }).join();
  std::thread([] {
    pthread_rwlock_wrlock(&g_table);
    { std::lock_guard<std::mutex> l(g_bank_a); }
    pthread_rwlock_unlock(&g_table);
  }).join();
  std::printf("done\n");
  return 0;
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
  if (std::strcmp(mode, "relock") == 0) {
    std::thread(TransferThenAudit).join();  // Never returns.
    return 1;
  }
  if (std::strcmp(mode, "backoff") == 0) return Backoff();
  if (std::strcmp(mode, "dlopen-fork") == 0 && argc > 2) return DlopenThenFork(argv[2]);
  if (std::strcmp(mode, "stall") == 0) {
    std::thread(WaitForBoth).join();
    std::printf("done\n");
    return 0;
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
