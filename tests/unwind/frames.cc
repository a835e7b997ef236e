#include "frames.h"

#include <cstdlib>
#include <cstring>

namespace lockprof::testing {

// The empty asm after each call keeps it from being a tail call, and the
// volatile reads keep the locals.

__attribute__((noinline)) int NestSmallFrames(int depth, Leaf leaf) {
  volatile int local[4] = {depth, depth + 1, depth + 2, depth + 3};
  if (depth == 0) {
    leaf();
  } else {
    NestSmallFrames(depth - 1, leaf);
  }
  asm volatile("");
  return local[0] + local[3];
}

__attribute__((noinline)) int NestLargeFrames(int depth, Leaf leaf) {
  volatile char big[65536];
  big[depth] = char(depth);
  if (depth == 0) {
    leaf();
  } else {
    NestLargeFrames(depth - 1, leaf);
  }
  asm volatile("");
  return big[depth];
}

__attribute__((noinline)) int NestDynamicFrames(int depth, int bytes, Leaf leaf) {
  char* vla = static_cast<char*>(__builtin_alloca(size_t(bytes)));
  std::memset(vla, depth, size_t(bytes));
  asm volatile("" : : "r"(vla) : "memory");
  if (depth == 0) {
    leaf();
  } else {
    NestDynamicFrames(depth - 1, bytes + 24, leaf);
  }
  asm volatile("");
  return vla[bytes - 1];
}

namespace {
Leaf g_qsort_leaf;
bool g_called;
int Compare(const void* a, const void* b) {
  if (!g_called) {
    g_called = true;
    g_qsort_leaf();
  }
  asm volatile("");
  return *static_cast<const int*>(a) - *static_cast<const int*>(b);
}
}  // namespace

__attribute__((noinline)) int ThroughQsort(Leaf leaf) {
  g_qsort_leaf = leaf;
  g_called = false;
  int v[] = {3, 1, 2};
  std::qsort(v, 3, sizeof(int), Compare);
  asm volatile("");
  return v[0];
}

}  // namespace lockprof::testing
