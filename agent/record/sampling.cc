#include "lockprof/agent/sampling.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>

#include "lockprof/agent/base/env.h"
#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/agent/record/sampler.h"

namespace lockprof {
namespace agent {

// `{}`: zero, as a constant initialiser (which LOCKPROF_TLS_CONSTINIT
// requires of the definition).
LOCKPROF_TLS_CONSTINIT thread_local ThreadState tls_state
    __attribute__((tls_model("initial-exec"))){};

constexpr int kDefaultMutexFraction = 10;
constexpr int64_t kDefaultBlockRateNs = 10000;
constexpr int kDefaultHoldRate = 1000;  // Why: see sampling.h.
// How many acquisitions a thread lets pass before it looks at the hold rate
// again while hold sampling is off.
constexpr int64_t kHoldRecheckStride = 65536;

Rates g_rates{{kDefaultMutexFraction}, {kDefaultBlockRateNs}, {kDefaultHoldRate}};

uint64_t NextRandom() {
  uint64_t x = tls_state.rng;
  if (x == 0) {
    // Seed from the thread's address, the process and the clock: distinct
    // per thread, and per process after fork() (RedrawInChild).
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x = reinterpret_cast<uintptr_t>(&tls_state) * 0x9E3779B97F4A7C15ull ^
        uint64_t(getpid()) * 0xBF58476D1CE4E5B9ull ^ (uint64_t(ts.tv_nsec) << 20) ^
        uint64_t(ts.tv_sec);
    if (x == 0) x = 1;
  }
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  tls_state.rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

namespace {

// The number of acquisitions to let pass before the next timed one: a
// geometric draw with success probability 1/rate (mean rate - 1). It makes
// every acquisition timed with probability exactly 1/rate, independently of
// the others, as a random number per acquisition would, but with one draw per
// sample; and it has none of the aliasing a fixed stride has with periodic
// workloads (a loop that takes two locks would always sample the same one).
int64_t NextHoldStride(int rate) {
  if (rate <= 1) return 0;
  // Uniform in (0, 1]; floor(ln(u) / ln(1 - p)) is geometric with parameter p.
  const double u = (double(NextRandom() >> 11) + 1.0) / 9007199254740992.0;
  const double stride = std::floor(std::log(u) / std::log1p(-1.0 / rate));
  return stride > 1e15 ? int64_t{1000000000000000} : int64_t(stride);
}

// One countdown's draw when it went negative: the next stride (drawn with
// the rate in force, kept in *stride_rate), and whether this acquisition is
// to be timed. A timed one's weight is the rate of the stride that ended
// here: each acquisition of a stride drawn with rate r was picked with
// probability 1/r (the geometric draw is memoryless), whatever the rate
// became meanwhile, so weighting by r keeps the totals unbiased across a
// SetHoldProfileRate (weighting by the new rate counted 1000 holds for each
// of the first sampled after a change from 1 to 1000).
bool DrawHoldSample(int64_t* countdown, bool* started, int* stride_rate) {
  const int rate = g_rates.hold_rate.load(std::memory_order_relaxed);
  if (rate <= 0) {
    *countdown = kHoldRecheckStride;
    *started = false;
    return false;
  }
  int weight = *stride_rate;
  if (!*started) {
    // This thread's first acquisition since sampling (re)started: it is
    // timed with probability 1/rate like any other, so that short-lived
    // threads are neither all sampled nor never sampled.
    *started = true;
    *stride_rate = rate;
    const int64_t skip = NextHoldStride(rate);
    if (skip > 0) {
      *countdown = skip - 1;  // This acquisition is one of them.
      return false;
    }
    weight = rate;
  }
  *countdown = NextHoldStride(rate);
  *stride_rate = rate;
  tls_state.hold_weight = weight;
  return true;
}

// A forked child starts with a copy of the forking thread's generator and
// countdowns: sibling workers of a prefork server would all time the same
// acquisitions. The child draws afresh (NextRandom reseeds with its pid).
void RedrawInChild() {
  tls_state.rng = 0;
  tls_state.hold_countdown = 0;
  tls_state.hold_started = false;
  tls_state.tracked_hold_countdown = 0;
  tls_state.tracked_hold_started = false;
}
[[maybe_unused]] const bool g_fork_handler = (OnForkChild(&RedrawInChild), true);

}  // namespace

bool HoldSampleDue() {
  if (LockTrackingOn()) {
    // Every acquisition is to reach the hook (the pthread interposer's
    // here), which draws the hold sample itself (TrackedHoldSampleDue).
    tls_state.hold_countdown = 0;
    tls_state.hold_started = false;
    return true;
  }
  // Below -1, the countdown was left to run down by the primitives' hook
  // while tracking was on (it does not reset it, to save the stores):
  // sampling starts again as for a new thread.
  if (tls_state.hold_countdown < -1) tls_state.hold_started = false;
  return DrawHoldSample(&tls_state.hold_countdown, &tls_state.hold_started,
                        &tls_state.hold_stride_rate);
}

bool TrackedHoldSampleDueSlow() {
  return DrawHoldSample(&tls_state.tracked_hold_countdown, &tls_state.tracked_hold_started,
                        &tls_state.tracked_hold_stride_rate);
}

namespace {

void ApplyEnvironment() {
  int64_t v;
  if (ParseEnvInt("LOCKPROF_MUTEX_FRACTION", 0, std::numeric_limits<int>::max(), &v))
    g_rates.mutex_fraction.store(int(v));
  if (ParseEnvInt("LOCKPROF_BLOCK_RATE", 0, std::numeric_limits<int64_t>::max(), &v))
    g_rates.block_rate_ns.store(v);
  if (ParseEnvInt("LOCKPROF_HOLD_RATE", 0, std::numeric_limits<int>::max(), &v))
    g_rates.hold_rate.store(int(v));
}

// Runs during static initialisation of this translation unit. A lock used
// by an earlier initialiser simply sees the compiled-in defaults.
[[maybe_unused]] const bool g_env_applied = (ApplyEnvironment(), true);

}  // namespace

}  // namespace agent

int SetMutexProfileFraction(int rate) {
  if (rate < 0) return agent::g_rates.mutex_fraction.load();
  return agent::g_rates.mutex_fraction.exchange(rate);
}

void SetBlockProfileRate(int64_t rate_ns) {
  agent::g_rates.block_rate_ns.store(rate_ns < 0 ? 0 : rate_ns);
}

int64_t BlockProfileRate() { return agent::g_rates.block_rate_ns.load(); }

int SetHoldProfileRate(int rate) {
  if (rate < 0) return agent::g_rates.hold_rate.load();
  // The calling thread draws its next stride at the new rate at once: a
  // program that sets rate 1 and then runs the section it wants to see
  // would otherwise miss it while a stride drawn at the old rate (about
  // that many acquisitions) runs out. Dropping a stride part-way is as
  // unbiased as finishing it (the draw is memoryless); other threads'
  // countdowns are theirs alone to touch.
  agent::ThreadState& ts = agent::tls_state;
  ts.hold_countdown = 0;
  ts.hold_started = false;
  ts.tracked_hold_countdown = 0;
  ts.tracked_hold_started = false;
  return agent::g_rates.hold_rate.exchange(rate);
}

}  // namespace lockprof
