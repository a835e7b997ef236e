#include "lockprof/agent/sampling.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>

#include "lockprof/agent/env.h"

namespace lockprof {
namespace agent {

thread_local ThreadState tls_state __attribute__((tls_model("initial-exec")));

constexpr int kDefaultMutexFraction = 10;
constexpr int64_t kDefaultBlockRateNs = 10000;
constexpr int kDefaultHoldRate = 10000;
// How many acquisitions a thread lets pass before it looks at the hold rate
// again while hold sampling is off.
constexpr int64_t kHoldRecheckStride = 65536;

Rates g_rates{{kDefaultMutexFraction}, {kDefaultBlockRateNs}, {kDefaultHoldRate}};

uint64_t NextRandom() {
  uint64_t x = tls_state.rng;
  if (x == 0) {
    // Seed from the thread's address and the clock: distinct per thread.
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x = reinterpret_cast<uintptr_t>(&tls_state) * 0x9E3779B97F4A7C15ull ^
        (uint64_t(ts.tv_nsec) << 20) ^ uint64_t(ts.tv_sec);
    if (x == 0) x = 1;
  }
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  tls_state.rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

// A geometric stride with mean `rate`: sampling "1 in rate" acquisitions
// without a random draw per acquisition, and without the periodic aliasing a
// fixed stride would have with periodic workloads.
static int64_t NextHoldStride(int rate) {
  if (rate <= 1) return 0;
  // Uniform in (0, 1]. The countdown is the number of acquisitions skipped
  // before the next sampled one: geometric with success probability 1/rate,
  // floor(ln(u) / ln(1 - 1/rate)), whose mean is rate - 1, so that samples
  // are exactly `rate` acquisitions apart on average and scaling each by
  // `rate` is unbiased. (Flooring an exponential of mean `rate` instead
  // would space them rate + 1/2 apart: a bias of 1/(2 rate).)
  double u = (double(NextRandom() >> 11) + 1.0) / 9007199254740992.0;
  double stride = std::log(u) / std::log1p(-1.0 / rate);
  if (stride > 1e15) stride = 1e15;
  return int64_t(stride);
}

bool HoldSampleDue() {
  int rate = g_rates.hold_rate.load(std::memory_order_relaxed);
  if (rate <= 0) {
    tls_state.hold_countdown = kHoldRecheckStride;
    return false;
  }
  // A thread arriving here for the first time (countdown was 0) starts a
  // random stride instead of sampling, so that short-lived threads are not
  // all sampled on their first acquisition.
  bool first = !tls_state.hold_started;
  tls_state.hold_started = true;
  tls_state.hold_countdown = NextHoldStride(rate);
  return !first || rate == 1;
}

static void ApplyEnvironment() {
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
[[maybe_unused]] static const bool g_env_applied = (ApplyEnvironment(), true);

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
  return agent::g_rates.hold_rate.exchange(rate);
}

}  // namespace lockprof
