// A library that locks its own static pthread mutex, for interpose_kinds_test's
// dlopen test: loaded after start-up, its calls must be interposed too.
#include <pthread.h>
#include <time.h>

pthread_mutex_t g_plugin_mu = PTHREAD_MUTEX_INITIALIZER;

// Holds the plugin's mutex for `hold_ms` while another thread waits for it
// (two threads, started and joined here). Returns 0 on success.
extern "C" __attribute__((visibility("default"))) int PluginContend(int hold_ms) {
  pthread_mutex_lock(&g_plugin_mu);
  pthread_t waiter;
  if (pthread_create(
          &waiter, nullptr,
          [](void*) -> void* {
            pthread_mutex_lock(&g_plugin_mu);
            pthread_mutex_unlock(&g_plugin_mu);
            return nullptr;
          },
          nullptr) != 0) {
    pthread_mutex_unlock(&g_plugin_mu);
    return 1;
  }
  timespec ts{hold_ms / 1000, (hold_ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
  pthread_mutex_unlock(&g_plugin_mu);
  return pthread_join(waiter, nullptr);
}
