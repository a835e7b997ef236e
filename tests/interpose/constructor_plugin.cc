// A library whose constructor takes a lock of the program that loads it, for
// interpose_hazards_test: dlopen() runs the constructor holding the dynamic
// loader's lock, so the constructor waits for the program's lock with the
// loader's lock held. The lock's address comes in the environment
// (LOCKPROF_TEST_CONSTRUCTOR_MUTEX, hexadecimal).
#include <pthread.h>

#include <cstdint>
#include <cstdlib>

__attribute__((constructor)) static void TakeTheProgramsLock() {
  const char* address = std::getenv("LOCKPROF_TEST_CONSTRUCTOR_MUTEX");
  if (address == nullptr) return;
  auto* m = reinterpret_cast<pthread_mutex_t*>(std::strtoull(address, nullptr, 16));
  pthread_mutex_lock(m);
  pthread_mutex_unlock(m);
}
