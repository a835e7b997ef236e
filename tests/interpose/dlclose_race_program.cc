// A program that knows nothing of lockprof: a thread releases a mutex in a
// plugin's data while the main thread waits for it, then the main thread
// takes it (after that release, the mutex may be destroyed, as POSIX
// allows) and dlclose()s the plugin, again and again. Under the interposer,
// the releasing thread names the lock after its release (the release is
// charged the main thread's wait), reading the plugin's loaded image.
//
// Usage: lockprof-interpose-dlclose-race PLUGIN ROUNDS; prints "N rounds".
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace {

pthread_mutex_t* g_mu;
std::atomic<bool> g_holding;

void* Release(void*) {
  pthread_mutex_lock(g_mu);
  g_holding = true;
  for (volatile int i = 0; i < 2000; ++i) {
  }
  pthread_mutex_unlock(g_mu);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const int rounds = std::atoi(argv[2]);
  for (int k = 0; k < rounds; ++k) {
    void* plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (plugin == nullptr) return 3;
    g_mu = static_cast<pthread_mutex_t*>(dlsym(plugin, "g_plugin_mu"));
    if (g_mu == nullptr) return 4;
    g_holding = false;
    pthread_t releaser;
    if (pthread_create(&releaser, nullptr, Release, nullptr) != 0) return 5;
    while (!g_holding) {
    }
    pthread_mutex_lock(g_mu);
    pthread_mutex_unlock(g_mu);
    if (dlclose(plugin) != 0) return 6;
    pthread_join(releaser, nullptr);
  }
  std::printf("%d rounds\n", rounds);
  return 0;
}
