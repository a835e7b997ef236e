// lockprof-lifecycle-child's second translation unit: a lockprof::Mutex
// with static storage, contended by a static initialiser (before main) and
// by a static destructor (after main returned), in another file than main,
// so that nothing orders their initialisation.
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/base/attributes.h"
#include "lockprof/lockprof.h"

namespace {

// Constant-initialised: usable before any dynamic initialiser ran, and after
// every destructor ran (its own destructor is trivial).
ABSL_CONST_INIT lockprof::Mutex g_static_mu("lifecycle.static");

// Makes another thread wait for g_static_mu while release() is about to
// release it, until the mutex profile has the new sample.
void Contend(void (*release)()) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int64_t before = lockprof::ProfileSampleCount("mutex");
    g_static_mu.lock();
    std::thread waiter([] { lockprof::MutexLock lock(&g_static_mu); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    release();
    waiter.join();
    if (lockprof::ProfileSampleCount("mutex") > before) return;
  }
}

// Distinct bodies, or -fipa-icf folds them into one function.
int g_releases[2];

ABSL_ATTRIBUTE_NOINLINE void StaticInitReleases() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  g_static_mu.unlock();
  ++g_releases[0];
}

ABSL_ATTRIBUTE_NOINLINE void StaticExitReleases() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  g_static_mu.unlock();
  ++g_releases[1];
}

struct StaticUser {
  StaticUser() {
    lockprof::SetMutexProfileFraction(1);
    Contend(&StaticInitReleases);
  }
  ~StaticUser() {
    const char* out = std::getenv("LOCKPROF_LIFECYCLE_OUT");
    if (out == nullptr) return;
    Contend(&StaticExitReleases);
    std::ofstream file(out, std::ios::binary);
    if (!lockprof::WriteProfile("mutex", 0, file).ok()) std::abort();
  }
};

StaticUser g_static_user;

}  // namespace
