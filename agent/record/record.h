// The recording API: how lockprof's primitives hand events to the agent.
//
// Contracts every caller keeps, and every function here honours:
//  * Called outside every critical section: contention and hold events
//    after the release of the lock measured; block events of a wait that
//    ended holding a lock after that lock's release (the waiter parks them
//    meanwhile: primitives/internal/deferred_block.h), condition waits
//    before re-locking.
//  * Never blocks, never takes a lock that a profile reader holds, never
//    allocates (beyond each table's one-time allocation on first use).
//  * Sampling decisions are made here; callers only pass raw measurements.
#ifndef LOCKPROF_AGENT_RECORD_RECORD_H_
#define LOCKPROF_AGENT_RECORD_RECORD_H_

#include <cstdint>

#include "lockprof/agent/record/event_tags.h"
#include "lockprof/agent/record/stack_trace.h"
#include "lockprof/agent/record/thread_state.h"
#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {

// Mutex profile: the release at the end of a critical section during which
// other threads waited `delay_ns` in total. The stack is the releaser's:
// the caller of the function whose frame is `entry_frame`.
void RecordContention(int64_t delay_ns, const EventTags& tags, const void* entry_frame);

// RecordContention in two steps, for a delay known only later (absl::Mutex's
// waits, in cycles of a clock whose scale is still being measured): the
// sampling decision, the stack and the labels now, the charge later (on any
// thread). SampleContention returns false if the event is not sampled.
struct PendingContention {
  StackTrace stack;
  const LabelSet* labels = nullptr;
  int64_t rate = 0;
};
bool SampleContention(const void* entry_frame, PendingContention* out);
void ChargeContention(int64_t delay_ns, const EventTags& tags, const PendingContention& pending);

// A thread sleeps for a lock that the waiter table could not register (its
// bucket was full: primitives/internal/waiter_table.h): its waiting will be
// in the block profile, but charged to no release in the mutex profile.
// Counted for /metrics (lockprof_lock_waits_uncharged_total).
void CountUnchargedWait();
uint64_t UnchargedWaits();

// Block profile: a thread waited `wait_ns` for a lock or a condition. `stack`
// is the waiter's, captured before it blocked (see CaptureWaiterStack).
// Every lock acquisition (tags.wait == kAcquire) also feeds the per-lock
// wait metrics (unsampled) and, if `may_call_hook`, the slow acquire hook
// (see metrics.h, slow_acquire.h); condition waits do not. Not
// `may_call_hook` while the thread holds the lock it waited for: the hook
// may take that lock.
void RecordBlock(int64_t wait_ns, const EventTags& tags, const StackTrace& stack,
                 bool may_call_hook = true);

// True when the block profile is on: only then do waiters capture stacks.
inline bool BlockProfilingEnabled() { return SamplingRate(ProfileId::kBlock) > 0; }

// A thread found a lockprof lock taken and starts to wait for it (it spins,
// and sleeps if the lock is still taken then): counted per lock for /metrics
// (lockprof_lock_waits_total), exactly, while the block profile is on. The
// caller is waiting anyway: its slow path calls this before its first poll,
// so the cost (a hash of the name and an add into this thread's own cell,
// tables/thread_cells.h) lengthens no critical section. Unlike the other Record functions it is
// called while another thread holds the lock, which is what makes it cheap.
void CountLockWait(const EventTags& tags);

// Hold profile: a sampled critical section lasted `hold_ns`; it stands for
// `weight` sections (the primitives pass HoldSampleWeight(), sampler.h). The
// stack is the releaser's, as for RecordContention. Also feeds the per-lock
// hold metrics, weighted alike. Nothing is recorded while the hold profile is
// off.
void RecordHold(int64_t hold_ns, int64_t weight, const EventTags& tags, const void* entry_frame);

// CAS profile (lockprof::Atomic): an update needed `retries` failed
// compare-exchanges and spent `delay_ns` retrying. The stack is the caller of
// the function whose frame is `entry_frame`, as for RecordContention.
// Sampled and scaled by the mutex profile fraction (see sampling.h).
void RecordCasRetries(int64_t retries, int64_t delay_ns, const EventTags& tags,
                      const void* entry_frame);

// True when the CAS profile is on: only then does a retrying CAS loop read
// the clock.
inline bool CasProfilingEnabled() { return SamplingRate(ProfileId::kCas) > 0; }

// Marks this thread as inside the recorder for its lifetime, so that
// lockprof locks taken by code the recorder calls are not recorded.
class RecorderScope {
 public:
  RecorderScope() : was_(tls_state.in_recorder) { tls_state.in_recorder = true; }
  ~RecorderScope() { tls_state.in_recorder = was_; }
  RecorderScope(const RecorderScope&) = delete;
  RecorderScope& operator=(const RecorderScope&) = delete;

 private:
  bool was_;
};

inline bool InRecorder() { return tls_state.in_recorder; }

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_RECORD_H_
