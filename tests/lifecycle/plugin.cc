// A plugin for dlopen_test: a shared library that uses lockprof::Mutex
// without linking lockprof itself; lockprof's symbols come from the program
// that loads it (linked with -rdynamic), so its events land in that
// program's profiles. The lock's name is a string in this library: it goes
// away when the library is unloaded.
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "lockprof/primitives/mutex.h"

namespace {
ABSL_CONST_INIT lockprof::Mutex g_plugin_mu{"plugin.lock"};
}  // namespace

ABSL_ATTRIBUTE_NOINLINE void PluginCriticalSection(int64_t* counter) {
  lockprof::MutexLock lock(&g_plugin_mu);
  ++*counter;
}

// Runs `threads` threads that each enter the critical section `iterations`
// times; returns how many times it was entered.
extern "C" int64_t lockprof_test_plugin_run(int threads, int iterations) {
  int64_t counter = 0;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < iterations; ++i) PluginCriticalSection(&counter);
    });
  }
  for (auto& w : workers) w.join();
  return counter;
}
