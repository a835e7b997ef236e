// A program with an allocator of its own (malloc and the rest defined here,
// as a program linking a custom allocator has), which takes a statistics
// mutex while it holds its allocator mutex; a second thread reads the
// statistics, so both mutexes are contended. Run under liblockprof_preload.so
// by interpose_test: whatever the interposer does inside the statistics
// mutex's calls (lock-order checking's new edges and its report included)
// must not allocate through this malloc, whose mutex the thread already
// holds. Prints "done" and exits 0.
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>

// A C name, as a C allocator's locks have (jemalloc's, say), and a C++ one.
// (A function's static would have a C++ name whose demangling, the first
// time the lock is named, still allocates: RELIABILITY.md, "Not yet covered".)
pthread_mutex_t g_alloc_mu = PTHREAD_MUTEX_INITIALIZER;

namespace {

pthread_mutex_t g_stats_mu = PTHREAD_MUTEX_INITIALIZER;
alignas(64) char g_heap[256 << 20];
size_t g_used = 0;
long g_allocations = 0;

void* Bump(size_t align, size_t n) {
  pthread_mutex_lock(&g_alloc_mu);
  size_t at = (g_used + align - 1) & ~(align - 1);
  if (at + n + 16 > sizeof g_heap) {
    pthread_mutex_unlock(&g_alloc_mu);
    return nullptr;
  }
  *reinterpret_cast<size_t*>(g_heap + at) = n;  // The size, below the block.
  at += 16;
  g_used = at + n;
  pthread_mutex_lock(&g_stats_mu);  // Nested in the allocator's mutex.
  ++g_allocations;
  pthread_mutex_unlock(&g_stats_mu);
  pthread_mutex_unlock(&g_alloc_mu);
  return g_heap + at;
}

size_t SizeOf(void* p) {
  return p != nullptr ? *reinterpret_cast<size_t*>(static_cast<char*>(p) - 16) : 0;
}

}  // namespace

extern "C" {
void* malloc(size_t n) { return Bump(16, n); }
void free(void*) {}
void* calloc(size_t a, size_t b) {
  void* p = Bump(16, a * b);
  if (p != nullptr) memset(p, 0, a * b);
  return p;
}
void* realloc(void* p, size_t n) {
  void* q = Bump(16, n);
  if (p != nullptr && q != nullptr) memcpy(q, p, SizeOf(p) < n ? SizeOf(p) : n);
  return q;
}
void* memalign(size_t align, size_t n) { return Bump(align < 16 ? 16 : align, n); }
void* aligned_alloc(size_t align, size_t n) { return memalign(align, n); }
int posix_memalign(void** out, size_t align, size_t n) {
  *out = memalign(align, n);
  return *out != nullptr ? 0 : ENOMEM;
}
size_t malloc_usable_size(void* p) { return SizeOf(p); }
}

// The program's own pthread keys, made before main: 40, more than the 32
// that glibc keeps in each thread's descriptor. A thread's first
// pthread_setspecific() of a key past those calloc()s its second block:
// inside this malloc's mutex, a thread's first record in lockprof must not
// set one (its keys are made when its library loads, before these).
__attribute__((constructor(101))) void MakeManyKeys() {
  for (int i = 0; i < 40; ++i) {
    pthread_key_t k;
    pthread_key_create(&k, nullptr);
  }
}

int main() {
  alarm(30);  // A deadlock ends the program with SIGALRM.
  // The allocator's order is g_alloc_mu, then g_stats_mu. Taking them the
  // other way once, before any other thread exists (so it cannot deadlock),
  // is an inversion that lock-order checking reports inside the lock call
  // of g_alloc_mu, while this thread holds g_stats_mu: what reporting does
  // there must not call malloc either, which would wait for g_stats_mu.
  free(malloc(1));
  pthread_mutex_lock(&g_stats_mu);
  pthread_mutex_lock(&g_alloc_mu);
  pthread_mutex_unlock(&g_alloc_mu);
  pthread_mutex_unlock(&g_stats_mu);
  pthread_t reader;
  pthread_create(
      &reader, nullptr,
      [](void*) -> void* {
        for (int i = 0; i < 200; ++i) {
          pthread_mutex_lock(&g_stats_mu);
          usleep(200);
          pthread_mutex_unlock(&g_stats_mu);
          usleep(50);
        }
        return nullptr;
      },
      nullptr);
  for (int i = 0; i < 200000; ++i) {
    volatile char* p = static_cast<char*>(malloc(32));
    p[0] = 1;
  }
  pthread_join(reader, nullptr);
  // A thread started after the keys: its first records are made inside this
  // malloc's mutex.
  pthread_t worker;
  pthread_create(
      &worker, nullptr,
      [](void*) -> void* {
        for (int i = 0; i < 200000; ++i) {
          volatile char* p = static_cast<char*>(malloc(32));
          p[0] = 1;
        }
        return nullptr;
      },
      nullptr);
  pthread_join(worker, nullptr);
  std::printf("done: %ld allocations\n", g_allocations);
  return 0;
}
