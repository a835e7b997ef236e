#include "lockprof/primitives/shared_mutex.h"

#include <climits>

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/primitives/internal/blocked_wait.h"
#include "lockprof/primitives/internal/deferred_block.h"
#include "lockprof/primitives/internal/fatal.h"
#include "lockprof/primitives/internal/futex.h"
#include "lockprof/primitives/internal/hold_sample.h"

namespace lockprof {

namespace {

// Spins before sleeping, as Mutex does: short critical sections end sooner
// than a futex round trip would.
constexpr int kSpinLimit = 100;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "SharedMutex sleeps on the high half of state_, at offset 4");

using agent::LockMode;

}  // namespace

// The epoch half of state_, for the kernel's 32-bit futex compare. C++ code
// only ever accesses state_ as a whole.
std::atomic<uint32_t>* SharedMutex::EpochWord() {
  return reinterpret_cast<std::atomic<uint32_t>*>(reinterpret_cast<char*>(&state_) + 4);
}

bool SharedMutex::try_lock() {
  if ((state_.load(std::memory_order_relaxed) & (kWriter | kCountMask)) != 0) return false;
  uint32_t expected = kWriterFree;
  if (!writer_.compare_exchange_strong(expected, kWriterLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
    return false;
  }
  // Holding writer_, nobody else sets kWriter: only readers change state_.
  uint64_t s = state_.load(std::memory_order_relaxed);
  while ((s & kCountMask) == 0) {
    if (state_.compare_exchange_weak(s, s | kWriter, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      if (__builtin_expect(agent::ShouldSampleHold(), 0)) StartHoldSample();
      return true;
    }
  }
  // A reader got in first: give writer_ back.
  if (writer_.exchange(kWriterFree, std::memory_order_release) == kWriterContended) WakeWriter();
  return false;
}

bool SharedMutex::try_lock_shared() {
  uint64_t s = state_.load(std::memory_order_relaxed);
  while ((s & kWriter) == 0) {
    if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      if (__builtin_expect(agent::ShouldSampleHold(), 0)) StartSharedHoldSample();
      return true;
    }
  }
  return false;
}

void SharedMutex::WakeWriter() { internal::FutexWake(&writer_, 1); }

bool SharedMutex::SpinForWriterLock() {
  for (int i = 0; i < kSpinLimit; ++i) {
    uint32_t w = writer_.load(std::memory_order_relaxed);
    if (w == kWriterFree &&
        writer_.compare_exchange_weak(w, kWriterLocked, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
      return true;
    }
    internal::SpinPause();
  }
  return false;
}

uint32_t SharedMutex::AnnounceWriter() {
  return uint32_t(state_.fetch_add(kWriter, std::memory_order_acquire) & kCountMask);
}

bool SharedMutex::ReadersGone(uint32_t readers_inside) {
  // Go's readerWait: readers that left since kWriter was set took one off
  // departing_ each; if that accounts for all of them, the writer is in.
  const auto n = int32_t(readers_inside);
  return departing_.fetch_add(n, std::memory_order_acq_rel) + n == 0;
}

bool SharedMutex::PostedAfterSpinning() {
  for (int i = 0; i < kSpinLimit; ++i) {
    if (writer_sem_.load(std::memory_order_acquire) == kPosted) {
      writer_sem_.store(kNotPosted, std::memory_order_relaxed);
      return true;
    }
    internal::SpinPause();
  }
  return false;
}

void SharedMutex::SleepUntilPosted() {
  uint32_t not_posted = kNotPosted;
  if (writer_sem_.compare_exchange_strong(not_posted, kWriterAsleep, std::memory_order_acquire)) {
    do {
      internal::FutexWait(&writer_sem_, kWriterAsleep);
    } while (writer_sem_.load(std::memory_order_acquire) == kWriterAsleep);
  }
  writer_sem_.store(kNotPosted, std::memory_order_relaxed);
}

// The writer's slow path: take writer_ (another writer may hold it), set
// kWriter, wait for the readers that were inside to leave. Each stage spins
// first; only a writer that has to sleep reads the clock, registers in the
// ledger and records a block event.
ABSL_ATTRIBUTE_NOINLINE void SharedMutex::LockSlow(bool have_writer, uint32_t readers_inside) {
  if (!have_writer && SpinForWriterLock()) {
    have_writer = true;
    readers_inside = AnnounceWriter();
  }
  bool readers_pending =
      have_writer && readers_inside != 0 && !ReadersGone(readers_inside) && !PostedAfterSpinning();
  if (have_writer && !readers_pending) return;

  internal::BlockedWait wait(__builtin_frame_address(0));
  // Every writer registers in the ledger before it marks writer_ contended,
  // so the last writer to leave the ledger knows nobody sleeps on writer_.
  ledger_.Enter(kWriters, wait.start());
  if (!have_writer) {
    while (writer_.exchange(kWriterContended, std::memory_order_acquire) != kWriterFree) {
      internal::FutexWait(&writer_, kWriterContended);
    }
    readers_inside = AnnounceWriter();
    readers_pending = readers_inside != 0 && !ReadersGone(readers_inside);
  }
  if (readers_pending) SleepUntilPosted();
  // No other writer waits: back to kWriterLocked, so that our unlock takes
  // the fast path instead of waking nobody.
  ledger_.Leave(kWriters, wait.start(),
                [this] { writer_.store(kWriterLocked, std::memory_order_relaxed); });
  wait.RecordAtRelease({name_, LockMode::kWrite, shard_}, this,
                       [this] { return internal::MarkSlowUnlock(&hold_start_); });
}

ABSL_ATTRIBUTE_NOINLINE void SharedMutex::UnlockSlow() {
  int64_t now = 0;
  const int64_t hold_ns = internal::EndHoldSample(&hold_start_, &now);
  const uint64_t s = state_.load(std::memory_order_relaxed);
  const uint32_t w = writer_.load(std::memory_order_relaxed);
  if ((s & kWriter) == 0 || w == kWriterFree) internal::Fatal("unlock of unlocked SharedMutex");
  // Readers queued behind us, or writers waiting for writer_: charge their
  // waiting to this critical section before anyone is let in.
  int64_t charged[2] = {0, 0};
  if ((s & kCountMask) != 0 || w == kWriterContended) {
    if (now == 0) now = agent::MonotonicNanos();
    ledger_.Settle(now, charged);
  }
  // Copied before the release (see Mutex::UnlockSlow).
  const agent::EventTags read{name_, LockMode::kRead, shard_};
  const agent::EventTags write{name_, LockMode::kWrite, shard_};
  // Admit the queued readers and start a new epoch, in one update. seq_cst,
  // with the load below: a reader that registered as a sleeper before it
  // saw the old epoch is seen here (and one that registers later sees the
  // new epoch and does not sleep).
  const uint64_t old = state_.fetch_add(kEpochOne - kWriter, std::memory_order_seq_cst);
  if ((old & kCountMask) != 0 && sleeping_readers_.load(std::memory_order_seq_cst) != 0) {
    internal::FutexWake(EpochWord(), INT_MAX);
  }
  if (writer_.exchange(kWriterFree, std::memory_order_release) == kWriterContended) WakeWriter();
  // Released: from here on nothing we do lengthens the critical section.
  const void* frame = __builtin_frame_address(0);
  if (charged[kReaders] > 0) agent::RecordContention(charged[kReaders], read, frame);
  internal::RecordAfterRelease(this, write, charged[kWriters], hold_ns, frame);
}

// A reader that found kWriter set: it is counted, and is in as soon as the
// epoch it saw ends (that writer's unlock).
ABSL_ATTRIBUTE_NOINLINE void SharedMutex::LockSharedSlow(uint64_t old) {
  const auto epoch = uint32_t(old >> 32);
  for (int i = 0; i < kSpinLimit; ++i) {
    if (uint32_t(state_.load(std::memory_order_acquire) >> 32) != epoch) return;
    internal::SpinPause();
  }
  internal::BlockedWait wait(__builtin_frame_address(0));
  ledger_.Enter(kReaders, wait.start());
  sleeping_readers_.fetch_add(1, std::memory_order_seq_cst);
  while (uint32_t(state_.load(std::memory_order_seq_cst) >> 32) == epoch) {
    internal::FutexWait(EpochWord(), epoch);
  }
  sleeping_readers_.fetch_sub(1, std::memory_order_relaxed);
  ledger_.Leave(kReaders, wait.start(), [] {});
  wait.RecordAtRelease({name_, LockMode::kRead, shard_}, this,
                       [this] { return internal::MarkSharedSlowUnlock(this); });
}

// `old`: state_ before this reader's decrement, or kNotReleased when this
// thread has sampled read holds open and the decrement is still to do.
ABSL_ATTRIBUTE_NOINLINE void SharedMutex::UnlockSharedSlow(uint64_t old) {
  int64_t hold_ns = -1;
  if (old == kNotReleased) {
    hold_ns = internal::EndSharedHoldSample(this);
    old = state_.fetch_sub(1, std::memory_order_release);
  }
  int64_t charged[2] = {0, 0};
  if (uint32_t(old) - 1 >= kCountMask) {
    if ((old & kCountMask) == 0) internal::Fatal("unlock_shared of unlocked SharedMutex");
    // A writer waits for the readers that were inside when it came, this
    // one among them. The last to leave settles the waiting so far — the
    // writer's, and that of the readers queued behind it — and lets it in.
    if (departing_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      ledger_.Settle(agent::MonotonicNanos(), charged);
      if (writer_sem_.exchange(kPosted, std::memory_order_acq_rel) == kWriterAsleep) {
        internal::FutexWake(&writer_sem_, 1);
      }
    }
  }
  const void* frame = __builtin_frame_address(0);
  const agent::EventTags read{name_, LockMode::kRead, shard_};
  if (charged[kWriters] > 0) {
    agent::RecordContention(charged[kWriters], {name_, LockMode::kWrite, shard_}, frame);
  }
  internal::RecordAfterRelease(this, read, charged[kReaders], hold_ns, frame);
}

void SharedMutex::StartHoldSample() { internal::StartHoldSample(&hold_start_); }

void SharedMutex::StartSharedHoldSample() { internal::StartSharedHoldSample(this); }

void SharedMutex::AssertHeld() const {
  if ((state_.load(std::memory_order_relaxed) & kWriter) == 0) {
    internal::Fatal("SharedMutex::AssertHeld: not locked exclusively");
  }
}

void SharedMutex::AssertReaderHeld() const {
  if ((state_.load(std::memory_order_relaxed) & (kWriter | kCountMask)) == 0) {
    internal::Fatal("SharedMutex::AssertReaderHeld: not locked");
  }
}

}  // namespace lockprof
