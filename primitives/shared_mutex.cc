#include "lockprof/primitives/shared_mutex.h"

#include <climits>

#include "lockprof/agent/record/record.h"
#include "lockprof/primitives/internal/acquire_hook.h"
#include "lockprof/primitives/internal/blocked_wait.h"
#include "lockprof/primitives/internal/deferred_block.h"
#include "lockprof/primitives/internal/fatal.h"
#include "lockprof/primitives/internal/futex.h"
#include "lockprof/primitives/internal/hold_sample.h"
#include "lockprof/primitives/internal/name_copy.h"
#include "lockprof/primitives/internal/spin_backoff.h"
#include "lockprof/primitives/internal/waiter_table.h"

namespace lockprof {

namespace {

// Futex bitsets: readers and writers sleep on the same word (the epoch)
// and are woken separately.
constexpr uint32_t kReaderBits = 1;
constexpr uint32_t kWriterBits = 2;

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
  uint64_t s = state_.load(std::memory_order_relaxed);
  do {
    // The asleep bits are only ever set with kWriter.
    if ((s & (kWriter | kCountMask)) != 0) return false;
  } while (!state_.compare_exchange_weak(s, s | kWriter, std::memory_order_acquire,
                                         std::memory_order_relaxed));
  if (__builtin_expect(agent::HoldCountdownExpired(), 0)) AcquireHook(true);
  return true;
}

bool SharedMutex::try_lock_shared() {
  uint64_t s = state_.load(std::memory_order_relaxed);
  while ((s & (kWriter | kReaderLimit)) == 0) {
    if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      if (__builtin_expect(agent::HoldCountdownExpired(), 0)) SharedAcquireHook(true);
      return true;
    }
  }
  return false;
}

uint32_t SharedMutex::AcquireWriterBitAsleep(internal::BlockedWait& wait) {
  for (;;) {
    uint64_t s = state_.load(std::memory_order_relaxed);
    if ((s & kWriter) == 0) {
      // kWritersAsleep with it: other writers may sleep (Leave decides).
      if (state_.compare_exchange_weak(s, s | kWriter | kWritersAsleep, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return uint32_t(s & kCountMask);
      }
      continue;
    }
    // Marked in the word the holder's release rewrites: either that release
    // sees the mark and wakes a writer, or the mark fails and we retry.
    if ((s & kWritersAsleep) == 0 &&
        !state_.compare_exchange_weak(s, s | kWritersAsleep, std::memory_order_relaxed)) {
      continue;
    }
    wait.Sleep(EpochWord(), uint32_t(s >> 32), kWriterBits);
  }
}

bool SharedMutex::ReadersGone(uint32_t readers_inside) {
  // Go's readerWait: readers that left since kWriter was set took one off
  // departing_ each; if that accounts for all of them, the writer is in.
  const auto n = int32_t(readers_inside);
  return departing_.fetch_add(n, std::memory_order_acq_rel) + n == 0;
}

bool SharedMutex::PostedAfterSpinning() {
  internal::SpinBackoff spin;
  do {
    if (writer_sem_.load(std::memory_order_acquire) == kPosted) {
      writer_sem_.store(kNotPosted, std::memory_order_relaxed);
      return true;
    }
  } while (spin.Pause());
  return false;
}

void SharedMutex::SleepUntilPosted(internal::BlockedWait& wait) {
  uint32_t not_posted = kNotPosted;
  if (writer_sem_.compare_exchange_strong(not_posted, kWriterAsleep, std::memory_order_acquire)) {
    do {
      wait.Sleep(&writer_sem_, kWriterAsleep);
    } while (writer_sem_.load(std::memory_order_acquire) == kWriterAsleep);
  }
  writer_sem_.store(kNotPosted, std::memory_order_relaxed);
}

// The writer's slow path: set kWriter (another writer may hold it), then
// wait for the readers that were inside to leave. Each stage spins first;
// only a writer that has to sleep reads the clock, registers in the waiter table
// and records a block event.
ABSL_ATTRIBUTE_NOINLINE void SharedMutex::LockSlow() {
  agent::CountLockWait({name_, LockMode::kWrite, shard_});  // As Mutex::LockSlow.
  bool have_writer = false;
  uint32_t readers_inside = 0;
  internal::SpinBackoff spin;  // Spins first, backing off (internal/spin_backoff.h).
  do {
    uint64_t s = state_.load(std::memory_order_relaxed);
    // Held, and someone sleeps on it already: sleep too, without spinning.
    // Waiters that go to sleep signal more threads than cores (or long
    // sections), where spinning takes the CPU from the threads that would
    // release; stopping there ran the cache workload 1.15-1.29x faster at
    // 4-16 threads on 2 cores, the empty section unchanged (BENCHMARKS.md,
    // "SharedMutex: no spin while a waiter sleeps").
    if ((s & kWriter) != 0 && (s & (kReadersAsleep | kWritersAsleep)) != 0) break;
    // Readers inside (none is queued while kWriter is clear): announce this
    // writer, so that new readers queue, then wait for them.
    if ((s & kWriter) == 0 &&
        state_.compare_exchange_weak(s, s | kWriter, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      have_writer = true;
      readers_inside = uint32_t(s & kCountMask);
      break;
    }
  } while (spin.Pause());
  bool readers_pending =
      have_writer && readers_inside != 0 && !ReadersGone(readers_inside) && !PostedAfterSpinning();
  if (have_writer && !readers_pending) return;

  internal::BlockedWait wait(__builtin_frame_address(0), this, {name_, LockMode::kWrite, shard_});
  // Every writer registers in the waiter table before it sets
  // kWritersAsleep, so the last writer to leave it knows that no writer
  // sleeps. With the word that counts the queued readers, as they do: the
  // first waiter to register names it for all (a fork()ed child takes the
  // parent's queued readers out of it).
  int64_t counted_from = -1;
  const bool registered =
      internal::Waiters().Enter(this, kWriters, wait.start(), &state_, &counted_from);
  if (!have_writer) {
    readers_inside = AcquireWriterBitAsleep(wait);
    readers_pending = readers_inside != 0 && !ReadersGone(readers_inside);
  }
  if (readers_pending) SleepUntilPosted(wait);
  // No other writer waits: clear the mark, so that our unlock takes the
  // fast path instead of waking nobody.
  wait.Charged(counted_from,
               internal::Waiters().Leave(this, kWriters, wait.start(), registered, [this] {
                 state_.fetch_and(~kWritersAsleep, std::memory_order_relaxed);
               }));
  wait.RecordAtRelease({name_, LockMode::kWrite, shard_}, this,
                       [this] { return internal::MarkSlowUnlock(&hold_start_); });
}

// The release (the update that clears kWriter) is the last access to
// *this: a thread it lets in may destroy the SharedMutex and reuse its
// memory. What is recorded afterwards was copied out before; the wake-ups
// only pass the address to the kernel (futex.h).
ABSL_ATTRIBUTE_NOINLINE void SharedMutex::UnlockSlow() {
  bool forgotten = false;  // By lock tracking, below.
  if (hold_start_ == internal::kTrackedUnlockOnly) {
    // Only lock tracking made this unlock slow: as Mutex::UnlockSlow.
    if (!agent::LockTrackingOn()) hold_start_ = 0;
    agent::TrackReleased(this);
    forgotten = true;
    uint64_t s = state_.load(std::memory_order_relaxed);
    if (uint32_t(s) == kWriter &&
        state_.compare_exchange_strong(s, s + kEpochOne - kWriter, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return;
    }
  }
  ReleaseAndRecord(__builtin_frame_address(0), forgotten);  // As Mutex::UnlockSlow.
  asm volatile("");
}

ABSL_ATTRIBUTE_NOINLINE void SharedMutex::ReleaseAndRecord(const void* frame, bool forgotten) {
  const int64_t hold_ns = internal::EndHoldSample(&hold_start_);
  if (!forgotten) agent::TrackReleased(this);  // Before the release: as Mutex.
  const internal::NameCopy name(name_);        // As Mutex's, for the same reason.
  const agent::EventTags read = name.Tags(LockMode::kRead, shard_);
  const agent::EventTags write = name.Tags(LockMode::kWrite, shard_);
  uint64_t s = state_.load(std::memory_order_relaxed);
  if ((s & kWriter) == 0) internal::Fatal("unlock of unlocked SharedMutex");
  // Readers queued behind us, or writers asleep: charge their waiting to
  // this critical section before anyone is let in. Others change state_
  // only by queueing (a reader) or marking themselves asleep, so the
  // release fails only then; it settles again (the table adds to
  // `charged`).
  int64_t charged[2] = {0, 0};
  for (;;) {
    if ((s & (kCountMask | kWritersAsleep)) != 0) internal::Waiters().Settle(this, charged);
    // Admit the queued readers, start a new epoch (which fails the
    // sleepers' futex compare), clear both asleep marks: one update.
    const uint64_t released = (s + kEpochOne - kWriter) & ~(kReadersAsleep | kWritersAsleep);
    if (state_.compare_exchange_weak(s, released, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      break;
    }
  }
  if (s & kReadersAsleep) internal::FutexWakeBitset(EpochWord(), INT_MAX, kReaderBits);
  if (s & kWritersAsleep) internal::FutexWakeBitset(EpochWord(), 1, kWriterBits);
  // Released: from here on nothing we do lengthens the critical section,
  // and nothing reads *this (`this` is only a key for parked events).
  if (charged[kReaders] > 0) agent::RecordContention(charged[kReaders], read, frame);
  internal::RecordAfterRelease(this, write, charged[kWriters], hold_ns, frame);
}

// A reader that found kWriter set: it is counted, and is in as soon as the
// epoch it saw ends (that writer's unlock).
ABSL_ATTRIBUTE_NOINLINE void SharedMutex::LockSharedSlow(uint64_t old) {
  if ((old & kReaderLimit) != 0) {
    internal::Fatal(
        "lockprof: SharedMutex: 2^27 read holds at once (a read lock taken and "
        "never released?)");
  }
  agent::CountLockWait({name_, LockMode::kRead, shard_});
  const auto epoch = uint32_t(old >> 32);
  internal::SpinBackoff spin;
  do {
    const uint64_t s = state_.load(std::memory_order_acquire);
    if (uint32_t(s >> 32) != epoch) return;
    // Someone sleeps on this lock already: a sign that its threads outnumber
    // the cores that run them, where a spinning waiter takes the CPU the
    // writer needs to finish (as in LockSlow).
    if ((s & (kReadersAsleep | kWritersAsleep)) != 0) break;
  } while (spin.Pause());
  internal::BlockedWait wait(__builtin_frame_address(0), this, {name_, LockMode::kRead, shard_});
  // Counted in state_ as well: a fork()ed child takes it out (waiter_table.h).
  int64_t counted_from = -1;
  const bool registered =
      internal::Waiters().Enter(this, kReaders, wait.start(), &state_, &counted_from);
  for (;;) {
    uint64_t s = state_.load(std::memory_order_acquire);
    if (uint32_t(s >> 32) != epoch) break;
    // Marked in the word the writer's release rewrites: either that release
    // sees the mark and wakes us, or our mark fails and we see its epoch.
    // (kWriter stays set for the rest of the epoch, so the mark is only
    // ever set with it.)
    if ((s & kReadersAsleep) == 0 &&
        !state_.compare_exchange_weak(s, s | kReadersAsleep, std::memory_order_relaxed)) {
      continue;
    }
    wait.Sleep(EpochWord(), epoch, kReaderBits);
  }
  wait.Charged(counted_from, internal::Waiters().Leave(this, kReaders, wait.start(), registered));
  wait.RecordAtRelease({name_, LockMode::kRead, shard_}, this,
                       [this] { return internal::MarkSharedSlowUnlock(this); });
}

// `old`: state_ before this reader's decrement, or kNotReleased when this
// thread has sampled read holds open and the decrement is still to do.
//
// The reader's release is its decrement. If a writer waits (kWriter), the
// reader then also takes itself off departing_, and the last one to leave
// settles and posts writer_sem_: the writer cannot get in before this
// reader's departing_ update, nor any reader (kWriter is set), so the
// accesses up to it precede any acquisition. The departing_ update (or the
// post) is the last access; the tags, read at entry (before it), are
// copies. Called after the decrement by unlock_shared() only when kWriter
// was set (or on misuse, which is fatal).
ABSL_ATTRIBUTE_NOINLINE void SharedMutex::UnlockSharedSlow(uint64_t old) {
  const internal::NameCopy name(name_);  // As Mutex's.
  const agent::EventTags read = name.Tags(LockMode::kRead, shard_);
  const agent::EventTags write = name.Tags(LockMode::kWrite, shard_);
  int64_t hold_ns = -1;
  if (old == kNotReleased) {
    hold_ns = internal::EndSharedHoldSample(this);
    agent::TrackReleased(this);  // Before the release: as Mutex.
    old = state_.fetch_sub(1, std::memory_order_release);
  }
  int64_t charged[2] = {0, 0};
  if (uint32_t(old) - 1 >= kCountMask) {
    if ((old & kCountMask) == 0) internal::Fatal("unlock_shared of unlocked SharedMutex");
    // A writer waits for the readers that were inside when it came, this
    // one among them. The last to leave settles the waiting so far — the
    // writer's, and that of the readers queued behind it — and lets it in.
    if (departing_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      internal::Waiters().Settle(this, charged);
      if (writer_sem_.exchange(kPosted, std::memory_order_acq_rel) == kWriterAsleep) {
        internal::FutexWake(&writer_sem_, 1);
      }
    }
  }
  const void* frame = __builtin_frame_address(0);
  if (charged[kWriters] > 0) agent::RecordContention(charged[kWriters], write, frame);
  internal::RecordAfterRelease(this, read, charged[kReaders], hold_ns, frame);
}

ABSL_ATTRIBUTE_NOINLINE void SharedMutex::AcquireHook(bool tried) {
  internal::AfterExclusiveAcquire(this, {name_, LockMode::kWrite, shard_}, tried, &hold_start_,
                                  __builtin_frame_address(0));
}

ABSL_ATTRIBUTE_NOINLINE void SharedMutex::SharedAcquireHook(bool tried) {
  internal::AfterSharedAcquire(this, {name_, LockMode::kRead, shard_}, tried,
                               __builtin_frame_address(0));
}

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
