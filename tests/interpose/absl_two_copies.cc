// A program that links lockprof itself and profiles absl::Mutex, run under
// liblockprof_preload.so with LOCKPROF_ABSL_MUTEXES=1 by interpose_test:
// two copies of lockprof, one Abseil (Debian's shared libabsl, whose
// RegisterMutexTracer aborts on a second registration of another function).
#include <cstdio>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "lockprof/primitives/absl_mutex_profile.h"

int main() {
  lockprof::ProfileAbslMutexes();
  absl::Mutex mu;
  int n = 0;
  auto work = [&] {
    for (int i = 0; i < 10000; ++i) {
      absl::MutexLock lock(&mu);
      ++n;
    }
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  std::printf("ok %d\n", n);
  return n == 20000 ? 0 : 1;
}
