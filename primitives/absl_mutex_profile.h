// absl::Mutex contention in lockprof's mutex profile.
//
// ProfileAbslMutexes() registers Abseil's mutex tracer
// (absl::RegisterMutexTracer). Abseil calls it on the releasing thread, after
// the release, with the time the waiters it wakes spent waiting; lockprof
// records that in the mutex profile at the releasing stack, sampled by the
// mutex profile fraction and scaled like every other event. Samples are
// labelled with the mutex's data symbol for a global or static absl::Mutex
// (as the pthread interposer names locks), else lock=(absl).
//
// What Abseil's hook cannot give:
//  * No block profile, no wait metrics, no hold profile: the hook runs only
//    at a release that woke waiters, and says neither who waited nor where.
//  * Each release is charged the waits of the threads it wakes (usually one
//    writer, or a group of readers), from when each started waiting, not the
//    waiting of every thread during its critical section as lockprof's own
//    locks are; waiters a release does not wake are charged to a later one.
//    No mode=read/write label either.
//  * Times come in Abseil's cycle-clock units, whose scale depends on how
//    Abseil was built: registration calibrates them once, with a traced
//    10 ms wait on a private mutex (a thread; up to three waits, 30 ms, when
//    a loaded machine delays the first).
//  * One tracer per process, never unregistered: a program that registers
//    its own replaces lockprof's, or is replaced by it. It reaches the
//    Abseil the program links: with a static Abseil inside the program,
//    liblockprof_preload.so (LOCKPROF_ABSL_MUTEXES=1) registers with its own
//    copy, which the program does not use.
// Abseil's libraries are built without frame pointers, so this switches the
// stack capture to the CFI fallback (agent/cfi_unwind.h) if it was off.
//
// Thread-safe; idempotent (the first call registers and calibrates; later
// calls return at once, possibly before the first finished). Cost: nothing on absl::Mutex's fast
// paths; on a contended release, a name lookup and the sampled recording.
#ifndef LOCKPROF_PRIMITIVES_ABSL_MUTEX_PROFILE_H_
#define LOCKPROF_PRIMITIVES_ABSL_MUTEX_PROFILE_H_

#include "lockprof/agent/base/export.h"

namespace lockprof {

LOCKPROF_EXPORT void ProfileAbslMutexes();

}  // namespace lockprof

#endif  // LOCKPROF_PRIMITIVES_ABSL_MUTEX_PROFILE_H_
