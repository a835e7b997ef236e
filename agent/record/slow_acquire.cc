#include "lockprof/agent/slow_acquire.h"

#include <atomic>
#include <limits>

#include "lockprof/agent/base/quiet_calls.h"
#include "lockprof/agent/record/sampler.h"

namespace lockprof {

namespace agent {

constexpr int64_t kNoHook = std::numeric_limits<int64_t>::max();

std::atomic<int64_t> g_slow_acquire_threshold_ns{kNoHook};

namespace {
std::atomic<SlowAcquireHook> g_hook{nullptr};
std::atomic<int> g_one_in{1};
}  // namespace

void CallSlowAcquireHook(int64_t wait_ns, const EventTags& tags, const StackTrace& stack) {
  SlowAcquireHook hook = g_hook.load(std::memory_order_acquire);
  if (hook == nullptr) return;
  const int one_in = g_one_in.load(std::memory_order_relaxed);
  if (one_in > 1 && NextRandom() % uint64_t(one_in) != 0) return;
  SlowAcquire event;
  event.lock = tags.lock;
  event.mode = LockModeName(tags.mode);
  event.waited = std::chrono::nanoseconds(wait_ns);
  event.stack = stack.pcs;
  event.stack_depth = stack.depth;
  // Called from lock and unlock calls, which are no cancellation points: a
  // hook that writes a log line must not be where the thread is cancelled.
  NoCancelNoErrno quiet;
  RunDroppingExceptions([&] { hook(event); });
}

}  // namespace agent

void SetSlowAcquireHook(std::chrono::nanoseconds threshold, SlowAcquireHook hook, int one_in) {
  // Disarm first, so that no thread pairs the new threshold with the old
  // hook for long; then publish the hook before the threshold arms it.
  agent::g_slow_acquire_threshold_ns.store(agent::kNoHook, std::memory_order_relaxed);
  agent::g_one_in.store(one_in < 1 ? 1 : one_in, std::memory_order_relaxed);
  agent::g_hook.store(hook, std::memory_order_release);
  if (hook != nullptr) {
    const int64_t ns = threshold.count() < 1 ? 1 : int64_t(threshold.count());
    agent::g_slow_acquire_threshold_ns.store(ns, std::memory_order_release);
  }
}

}  // namespace lockprof
