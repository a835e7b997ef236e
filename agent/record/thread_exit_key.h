// A pthread key whose destructor hands a thread's per-thread record back
// when the thread exits.
//
// A pthread key's destructor, not a thread_local's: a thread may first need
// its record in another key's destructor (OpenSSL frees its thread state in
// one, and may lock there), after glibc ran the thread_local destructors,
// and a thread_local destructor registered then never runs. A key set while
// keys are destroyed is destroyed in glibc's next round.
//
// Each key is made when its library loads (a static initialiser in the file
// that uses it), not at its first use: glibc keeps a thread's first 32 keys
// in its descriptor and calloc()s a block for the others at the thread's
// first pthread_setspecific() of one, and that first set comes with the
// thread's first recorded event, which may be inside the program's own
// malloc, whose mutex the thread holds. (A program that made 32 keys before
// lockprof's library loaded still gets keys past them; the preload library
// loads before the program's constructors run.)
#ifndef LOCKPROF_AGENT_RECORD_THREAD_EXIT_KEY_H_
#define LOCKPROF_AGENT_RECORD_THREAD_EXIT_KEY_H_

#include <pthread.h>

#include <optional>

namespace lockprof::agent {

// The key for `Release`, created on first use; nullopt if the process has
// used up its keys (then the caller must not hand out records it could
// never take back).
template <void (*Release)(void*)>
std::optional<pthread_key_t> ThreadExitKey() {
  static const std::optional<pthread_key_t> key = []() -> std::optional<pthread_key_t> {
    pthread_key_t k;
    if (pthread_key_create(&k, Release) != 0) return std::nullopt;
    return k;
  }();
  return key;
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_THREAD_EXIT_KEY_H_
