#include "lockprof/agent/record/record.h"

#include <atomic>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/metrics/lock_metrics.h"
#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/agent/record/sampler.h"
#include "lockprof/agent/record/thread_state.h"
#include "lockprof/agent/slow_acquire.h"
#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {

namespace {

// v * rate, saturating: a kept event stands for `rate` events, and at a rate
// near INT_MAX a 4.3 s wait would overflow (undefined, and read back as a
// negative delay).
inline int64_t Scaled(int64_t v, int64_t rate) {
  int64_t out;
  return __builtin_mul_overflow(v, rate, &out) ? INT64_MAX : out;
}

// One in `rate` events, by a per-thread random draw.
inline bool OneIn(int64_t rate) { return rate <= 1 || NextRandom() % uint64_t(rate) == 0; }

// `labels`: this thread's, unless the event was sampled earlier
// (ChargeContention).
void AddSample(ProfileId id, const StackTrace& stack, const EventTags& tags, int64_t v0, int64_t v1,
               const LabelSet* labels = tls_state.labels) {
  ProfileTable(id).Add(stack, tags, labels, v0, v1);
  CountSampleRecorded(id);
}

// This thread's latest hold sample's entry in the hold profile's table. At
// hold rate 1 every section is a sample, and a thread mostly takes the same
// lock at the same call site again and again: it then finds the entry by
// comparing its key with the one the entry holds, instead of hashing the
// stack and probing the table (a fifth of the sample's cost, and time after
// the release in which the next waiter takes the lock). The entry never
// moves (stack_table.h), also in a fork()ed child. A plain thread_local,
// touched only by sampled holds: no room taken from the initial-exec TLS
// of tls_state.
thread_local StackTable::EntryRef t_last_hold_entry;

void AddHoldSample(const StackTrace& stack, const EventTags& tags, int64_t v0, int64_t v1) {
  const LabelSet* labels = tls_state.labels;
  StackTable& table = ProfileTable(ProfileId::kHold);
  StackTable::EntryRef& entry = t_last_hold_entry;
  if (!StackTable::IsEntryOf(entry, stack, tags, labels)) entry = table.Lookup(stack, tags, labels);
  table.AddTo(entry, v0, v1);
  CountSampleRecorded(ProfileId::kHold);
}

std::atomic<uint64_t> g_uncharged_waits{0};

// The fork handlers' scope (fork.h): inside the recorder, as any code of
// lockprof's that takes its own mutexes.
void ForkHandlerScope(bool enter) {
  if (enter) {
    tls_state.in_recorder_before_fork = tls_state.in_recorder;
    tls_state.in_recorder = true;
  } else {
    tls_state.in_recorder = tls_state.in_recorder_before_fork;
  }
}
[[maybe_unused]] const bool g_fork_scope_set = (SetForkHandlerScope(&ForkHandlerScope), true);

}  // namespace

void CountUnchargedWait() { g_uncharged_waits.fetch_add(1, std::memory_order_relaxed); }

uint64_t UnchargedWaits() { return g_uncharged_waits.load(std::memory_order_relaxed); }

void RecordContention(int64_t delay_ns, const EventTags& tags, const void* entry_frame) {
  if (delay_ns <= 0) return;
  PendingContention pending;
  if (SampleContention(entry_frame, &pending)) ChargeContention(delay_ns, tags, pending);
}

bool SampleContention(const void* entry_frame, PendingContention* out) {
  if (InRecorder()) return false;
  const int64_t rate = SamplingRate(ProfileId::kMutex);
  if (rate <= 0 || !OneIn(rate)) return false;
  RecorderScope scope;
  CaptureStack(entry_frame, &out->stack);
  out->labels = tls_state.labels;
  out->rate = rate;
  return true;
}

void ChargeContention(int64_t delay_ns, const EventTags& tags, const PendingContention& pending) {
  if (delay_ns <= 0) return;
  RecorderScope scope;
  // Scaled at record time, as Go >= 1.20 does: readers never rescale.
  AddSample(ProfileId::kMutex, pending.stack, tags, pending.rate, Scaled(delay_ns, pending.rate),
            pending.labels);
}

void RecordBlock(int64_t wait_ns, const EventTags& tags, const StackTrace& stack,
                 bool may_call_hook) {
  if (wait_ns <= 0 || InRecorder()) return;
  RecorderScope scope;
  // Metrics count every lock wait, before the profile's sampling: exact
  // counts for the price of a few atomic adds on a path that just slept.
  if (tags.wait == WaitKind::kAcquire) {
    ObserveLockWait(tags, wait_ns);
    if (may_call_hook) MaybeReportSlowAcquire(wait_ns, tags, stack);
  }
  const int64_t rate = SamplingRate(ProfileId::kBlock);
  if (rate <= 0) return;
  if (wait_ns >= rate) {
    AddSample(ProfileId::kBlock, stack, tags, 1, wait_ns);
  } else if (const int64_t draw = int64_t(NextRandom() % uint64_t(rate)); draw < wait_ns) {
    // Kept with probability wait/rate: weight each kept event by rate/wait.
    // The count must be a whole number, and rounding each event's weight the
    // same way would bias the total (a wait of 0.6 rate would count 1 for
    // 1.67 events: 40% lost); so round at random, up with the probability of
    // the fraction, which keeps the expected count exact. The draw, given
    // that it kept the event, is uniform below wait_ns: it decides that too.
    // (Go keeps the count as a float and rounds only the sum.)
    AddSample(ProfileId::kBlock, stack, tags, rate / wait_ns + (draw < rate % wait_ns), rate);
  }
}

void CountLockWait(const EventTags& tags) {
  if (!BlockProfilingEnabled() || InRecorder()) return;
  RecorderScope scope;
  ObserveLockWaitStart(tags);
}

void RecordHold(int64_t hold_ns, int64_t weight, const EventTags& tags, const void* entry_frame) {
  if (InRecorder() || weight <= 0 || SamplingRate(ProfileId::kHold) <= 0) return;
  RecorderScope scope;
  if (hold_ns < 0) hold_ns = 0;
  // Each sampled section stands for `weight` sections, in metrics as in the profile.
  ObserveLockHold(tags, hold_ns, uint64_t(weight));
  StackTrace stack;
  CaptureStack(entry_frame, &stack);
  AddHoldSample(stack, tags, weight, Scaled(hold_ns, weight));
}

void RecordCasRetries(int64_t retries, int64_t delay_ns, const EventTags& tags,
                      const void* entry_frame) {
  if (retries <= 0 || InRecorder()) return;
  // Sampled like the mutex profile (a CAS loop that retried is contention
  // too): 1 in `rate` loops, each kept one scaled by `rate`.
  const int64_t rate = SamplingRate(ProfileId::kCas);
  if (rate <= 0 || !OneIn(rate)) return;
  RecorderScope scope;
  StackTrace stack;
  CaptureStack(entry_frame, &stack);
  AddSample(ProfileId::kCas, stack, tags, Scaled(retries, rate),
            Scaled(delay_ns < 0 ? 0 : delay_ns, rate));
}

}  // namespace lockprof::agent
