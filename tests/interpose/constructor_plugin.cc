// A library whose constructor takes locks of the program that loads it, for
// interpose_hazards_test and interpose_deadlock_test: dlopen() runs the
// constructor holding the dynamic loader's lock, so the constructor waits
// for the program's locks with the loader's lock held. The locks' addresses
// come in the environment (LOCKPROF_TEST_CONSTRUCTOR_MUTEX, hexadecimal,
// comma-separated): taken in that order, released in the reverse order.
#include <pthread.h>

#include <cstdint>
#include <cstdlib>

__attribute__((constructor)) static void TakeTheProgramsLocks() {
  const char* list = std::getenv("LOCKPROF_TEST_CONSTRUCTOR_MUTEX");
  if (list == nullptr) return;
  pthread_mutex_t* taken[4];
  int n = 0;
  for (char* end = nullptr; n < 4 && *list != '\0'; list = *end == ',' ? end + 1 : end) {
    taken[n] = reinterpret_cast<pthread_mutex_t*>(std::strtoull(list, &end, 16));
    if (end == list) break;
    pthread_mutex_lock(taken[n++]);
  }
  while (n > 0) pthread_mutex_unlock(taken[--n]);
}
