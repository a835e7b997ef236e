// A library with one static pthread mutex, built twice under two names of
// the same length (tests/interpose/CMakeLists.txt), so that both builds have
// one layout: unloaded, one is usually loaded again where the other was.
// For interpose_names_test.
#include <pthread.h>

pthread_mutex_t PLUGIN_LOCK_NAME = PTHREAD_MUTEX_INITIALIZER;

extern "C" __attribute__((visibility("default"))) pthread_mutex_t* PluginLock() {
  return &PLUGIN_LOCK_NAME;
}
