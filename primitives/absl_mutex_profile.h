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
//    Abseil was built: registration calibrates them once, with traced 10 ms
//    waits on a private mutex (a thread; two waits, 20 ms, or up to five,
//    50 ms, when a loaded machine delays them).
//  * One tracer per process, never unregistered: Abseil keeps the first
//    registration; a later one of another function is ignored by a release
//    build of Abseil and aborts a debug build (Debian's libabsl is one). So
//    a program that registers its own tracer cannot use this. Two copies of
//    lockprof in one process (liblockprof_preload.so with
//    LOCKPROF_ABSL_MUTEXES=1, and a program that links lockprof and calls
//    this) register once: the later says so on stderr and leaves
//    absl::Mutex to the first. It reaches the Abseil the program links: with
//    a static Abseil inside the program, liblockprof_preload.so registers
//    with its own copy, which the program does not use.
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
