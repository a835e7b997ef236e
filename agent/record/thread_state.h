// Per-thread state of the recording path.
//
// One plain struct in initial-exec TLS: reading it is a single %fs-relative
// load, with no TLS wrapper call and no lazy-initialisation guard. Everything
// starts at zero and is initialised on first use by the slow paths.
#ifndef LOCKPROF_AGENT_RECORD_THREAD_STATE_H_
#define LOCKPROF_AGENT_RECORD_THREAD_STATE_H_

#include <cstdint>
#include <type_traits>

#include "lockprof/agent/base/export.h"

namespace lockprof::agent {

class LabelSet;

// Sampled read holds a thread can have open at once; more are not sampled.
inline constexpr int kMaxSharedHoldSamples = 4;

struct SharedHoldSample {
  const void* lock;
  int64_t start;
  // This entry makes the unlock of a read hold that lock tracking recorded
  // slow (so that the unlock forgets it): one entry per recorded hold.
  bool tracked;
};

struct ThreadState {
  // Acquisitions left before the next sampled hold. Decremented by every
  // lock of every lockprof primitive; the hold sampler runs when it goes
  // negative (see sampling.h).
  int64_t hold_countdown;
  // False until this thread first drew a hold-sampling stride, and again
  // while hold sampling is off (see HoldSampleDue).
  bool hold_started;
  // The same pair for the acquisitions that reach the primitives' hook
  // because lock tracking keeps hold_countdown expired: the hold sampler
  // draws from these instead while tracking is on (TrackedHoldSampleDue).
  bool tracked_hold_started;
  int64_t tracked_hold_countdown;
  // The hold rate each countdown's stride was drawn with, and the weight of
  // this thread's latest sampled hold: the rate of the stride that picked it,
  // which may not be the rate in force when the hold ends (see
  // HoldSampleWeight in sampler.h).
  int hold_stride_rate;
  int tracked_hold_stride_rate;
  int hold_weight;
  // xorshift64* state for sampling decisions; 0 until seeded.
  uint64_t rng;
  // Bounds of this thread's stack, for the frame-pointer walker; 0 until read.
  uintptr_t stack_lo;
  uintptr_t stack_hi;
  // Labels attached by lockprof::ScopedLabels; nullptr when none.
  const LabelSet* labels;
  // Set while this thread is inside the recorder, so that a lockprof lock
  // taken by the recorder's own callees (a user hook, say) is not recorded.
  bool in_recorder;
  // in_recorder as it was when fork()'s prepare handler set it (fork.h).
  bool in_recorder_before_fork;
  // Sampled read holds (lockprof::SharedMutex) this thread has open: many
  // threads hold a read lock at once, so the start time lives with the
  // thread, not the lock. unlock_shared's fast path tests only the count.
  int32_t shared_hold_samples;
  SharedHoldSample shared_holds[kMaxSharedHoldSamples];
  // This thread's slept waits, for ThisThreadLockWait(): kept exactly,
  // whatever the profiling rates (see CountThreadWait).
  int64_t lock_wait_ns;
  int64_t lock_waits;
  int64_t condition_wait_ns;
  int64_t condition_waits;
  // This thread's record of the locks it holds and waits for
  // (lock_tracking.cc); nullptr until it first needs one.
  void* lock_record;
  // Block events this thread has parked for its releases
  // (primitives/internal/deferred_block.h): every slow release tests it, so
  // that only one with events parked reaches their thread_local, which a
  // library built -fPIC reaches through a __tls_get_addr call.
  int32_t deferred_blocks;
  // This thread's block of value cells (tables/thread_cells.cc); nullptr
  // until it first records.
  void* cells;
};

// Trivial, so that it needs no initialisation: a thread_local that did
// would be reached through a TLS wrapper call on every fast path.
static_assert(std::is_trivially_default_constructible_v<ThreadState> &&
                  std::is_trivially_destructible_v<ThreadState>,
              "ThreadState must stay trivial (no default member initializers)");

// Declared constant-initialised: without that, GCC and Clang test for a
// TLS initialisation function before every access (a load, a branch and a
// register on every fast path), since another translation unit could have
// given the variable a dynamic initialiser.
#if defined(__clang__)
#define LOCKPROF_TLS_CONSTINIT [[clang::require_constant_initialization]]
#elif defined(__GNUC__)
#define LOCKPROF_TLS_CONSTINIT __constinit
#else
#define LOCKPROF_TLS_CONSTINIT
#endif

LOCKPROF_TLS_CONSTINIT LOCKPROF_EXPORT extern thread_local ThreadState tls_state
    __attribute__((tls_model("initial-exec")));

// Adds one wait of `ns` that slept to this thread's totals: a lock
// acquisition, or a condition wait when `condition`. Called once per wait,
// on the path that has just slept, so the totals cost nothing uncontended.
inline void CountThreadWait(int64_t ns, bool condition) {
  ThreadState& s = tls_state;
  if (condition) {
    s.condition_wait_ns += ns;
    ++s.condition_waits;
  } else {
    s.lock_wait_ns += ns;
    ++s.lock_waits;
  }
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_THREAD_STATE_H_
