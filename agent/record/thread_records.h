// Per-thread records that outlive their threads: a process-wide list of
// records, never freed (readers walk it without a lock), each owned by at
// most one thread at a time and handed back at its exit through a pthread
// key (thread_exit_key.h), for the next thread to claim.
//
// A record type T has `std::atomic<T*> next`, `std::atomic<bool> in_use`
// (true when constructed) and `std::atomic<uint32_t> generation`, the
// ForkGeneration() of its owner's process (fork.h): in a fork()ed child the
// records of the parent's other threads have an older one, and no thread of
// the child owns them, whatever in_use says. The forking thread's own record
// must not look so there: each record type renews it in an OnForkChild
// handler, or a new thread of the child would claim it while the forking
// thread still uses it.
#ifndef LOCKPROF_AGENT_RECORD_THREAD_RECORDS_H_
#define LOCKPROF_AGENT_RECORD_THREAD_RECORDS_H_

#include <pthread.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <new>
#include <optional>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/record/thread_exit_key.h"

namespace lockprof::agent {

// Claims a free record of `all` (or a stale one), or maps a new one and adds
// it; `Release` gets it back when this thread exits. nullptr when this
// thread must not own one: it is exiting (`exited`: its record went back
// already, and one claimed now would never be), the process has no key left,
// or memory ran out. The caller sets up what a new owner needs, then stores
// ForkGeneration() in its generation: until then a parent's record claimed
// here reads as stale (kClaimingGeneration), so that readers skip what the
// parent's thread left in it.
// A parent's thread's record from its claim until its new owner set it up.
inline constexpr uint32_t kClaimingGeneration = ~uint32_t{0};

template <typename T, void (*Release)(void*)>
T* ClaimThreadRecord(std::atomic<T*>* all, bool exited) {
  const std::optional<pthread_key_t> key = ThreadExitKey<Release>();
  if (exited || !key) return nullptr;
  const uint32_t now = ForkGeneration();
  T* r = nullptr;
  for (T* p = all->load(std::memory_order_acquire); p != nullptr;
       p = p->next.load(std::memory_order_acquire)) {
    uint32_t generation = p->generation.load(std::memory_order_acquire);
    if (generation == kClaimingGeneration) continue;  // Another thread's, from now on.
    if (generation != now) {
      // A parent's thread's record. Claimed in one step, the generation's,
      // which one thread wins: resetting in_use first let two threads of
      // the child both claim it (owner-only cells with two owners).
      if (!p->generation.compare_exchange_strong(generation, kClaimingGeneration,
                                                 std::memory_order_acquire)) {
        continue;
      }
      // In use, and claimed by nobody else: kClaimingGeneration stays until
      // the caller has set it up.
      p->in_use.store(true, std::memory_order_relaxed);
      r = p;
      break;
    }
    bool free = false;
    if (p->in_use.compare_exchange_strong(free, true, std::memory_order_acquire)) {
      r = p;
      break;
    }
  }
  if (r == nullptr) {
    // Mapped, not allocated with new: a thread claims its record at its
    // first recorded event, which may be inside the application's own
    // malloc (an allocator that takes pthread mutexes, which the interposer
    // records), where calling malloc would wait for a mutex this thread
    // holds. Never unmapped, as records are never freed.
    static_assert(alignof(T) <= 4096, "mmap aligns to a page");
    void* memory =
        mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return nullptr;
    r = new (memory) T;
    // Before it is listed: a record of an older generation is claimable.
    r->generation.store(now, std::memory_order_relaxed);
    T* head = all->load(std::memory_order_relaxed);
    do {
      r->next.store(head, std::memory_order_relaxed);
    } while (
        !all->compare_exchange_weak(head, r, std::memory_order_release, std::memory_order_relaxed));
  }
  if (pthread_setspecific(*key, r) != 0) {
    r->generation.store(now, std::memory_order_relaxed);  // Free for the next claim.
    r->in_use.store(false, std::memory_order_release);
    return nullptr;
  }
  return r;
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_THREAD_RECORDS_H_
