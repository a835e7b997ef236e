// The settings of lock-order checking, holder tracking and the stall
// watchdog (agent/lock_order.h), and what happens when one finds something:
// the stderr line, the user's hook, the counter, and kAbort's abort.
#include "lockprof/agent/lock_order.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "lockprof/agent/base/env.h"
#include "lockprof/agent/deadlock/events.h"
#include "lockprof/agent/deadlock/reports.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof {
namespace agent {

std::atomic<int> g_lock_order_mode{int(LockOrderMode::kOff)};

namespace {

std::atomic<bool> g_held_tracking{false};
std::atomic<LockOrderHook> g_order_hook{nullptr};
std::atomic<LockStallHook> g_stall_hook{nullptr};
std::atomic<uint64_t> g_stalls{0};

void ApplyEnvironment() {
  if (std::optional<std::string> v = EnvValue("LOCKPROF_LOCK_ORDER")) {
    if (*v == "report") {
      g_lock_order_mode.store(int(LockOrderMode::kReport));
    } else if (*v == "abort") {
      g_lock_order_mode.store(int(LockOrderMode::kAbort));
    } else if (*v != "off" && !v->empty()) {
      std::fprintf(stderr, "lockprof: ignoring LOCKPROF_LOCK_ORDER=%s: not off, report or abort\n",
                   v->c_str());
    }
  }
  int64_t ms;
  if (ParseEnvInt("LOCKPROF_STALL_REPORT_MS", 0, int64_t{1} << 40, &ms)) {
    g_stall_threshold_ns.store(ms * 1000000);
  }
  int64_t held;
  if (ParseEnvInt("LOCKPROF_TRACK_HELD", 0, 1, &held)) g_held_tracking.store(held == 1);
  UpdateLockTracking();
}

// During static initialisation, as the sampling rates are.
[[maybe_unused]] const bool g_env_applied = (ApplyEnvironment(), true);

}  // namespace

void UpdateLockTracking() {
  const bool details = g_held_tracking.load() || g_stall_threshold_ns.load() > 0;
  g_held_details.store(details);
  g_track_locks.store(LockOrderCheckingOn() || details);
  // The calling thread starts (or stops) tracking at its next acquisition;
  // other running threads when their hold countdown next expires.
  tls_state.hold_countdown = 0;
}

const char* LockOrderModeName() {
  switch (LockOrderMode(g_lock_order_mode.load(std::memory_order_relaxed))) {
    case LockOrderMode::kReport:
      return "report";
    case LockOrderMode::kAbort:
      return "abort";
    default:
      return "off";
  }
}

void ReportInversions(const std::vector<Inversion>& cycles) {
  // Locks the hook and the report take are not the program's.
  RecorderScope recorder;
  const bool abort_now = g_lock_order_mode.load() == int(LockOrderMode::kAbort);
  for (const Inversion& inv : cycles) {
    std::string cycle;
    for (const InversionEdge& e : inv.edges) cycle += "\"" + e.from + "\" -> ";
    cycle += "\"" + inv.edges[0].from + "\"";
    std::fprintf(stderr,
                 "lockprof: lock-order inversion (potential deadlock): %s; thread %lld took "
                 "\"%s\" while holding \"%s\"; stacks at /debug/lockprof/lock-order\n",
                 cycle.c_str(), static_cast<long long>(inv.edges[0].tid), inv.edges[0].to.c_str(),
                 inv.edges[0].from.c_str());
    if (LockOrderHook hook = g_order_hook.load()) {
      std::vector<LockOrderEdge> edges;
      for (const InversionEdge& e : inv.edges) {
        edges.push_back({e.from.c_str(), e.to.c_str(), e.tid, e.stack.data(), int(e.stack.size())});
      }
      hook(LockOrderInversion{edges.data(), int(edges.size())});
    }
    if (abort_now) {
      const std::string text =
          "lockprof: lock-order inversion, aborting (LOCKPROF_LOCK_ORDER=abort): " +
          InversionText(inv);
      std::fwrite(text.data(), 1, text.size(), stderr);
      std::fflush(stderr);
      std::abort();
    }
  }
}

void ReportStalledWait(const LockStall& stall) {
  g_stalls.fetch_add(1, std::memory_order_relaxed);
  std::string holder = "holder not tracked";
  if (stall.holder_thread_id != 0) {
    holder = "held by thread " + std::to_string(stall.holder_thread_id) + " (" +
             ThreadName(stall.holder_thread_id) + ") for " +
             std::to_string(stall.held.count() / 1000000) + " ms, acquired at " +
             FirstUserFrame(stall.holder_stack, stall.holder_stack_depth);
  } else if (LockTrackingOn()) {
    holder = "holder not found";
  }
  std::fprintf(stderr,
               "lockprof: stall: thread %lld (%s) has waited %lld ms for lock \"%s\", %s; "
               "see /debug/lockprof/held\n",
               static_cast<long long>(stall.waiter_thread_id),
               ThreadName(stall.waiter_thread_id).c_str(),
               static_cast<long long>(stall.waited.count() / 1000000), stall.lock, holder.c_str());
  if (LockStallHook hook = g_stall_hook.load()) hook(stall);
}

}  // namespace agent

void SetLockOrderChecking(LockOrderMode mode) {
  agent::g_lock_order_mode.store(int(mode));
  agent::UpdateLockTracking();
}

LockOrderMode LockOrderChecking() { return LockOrderMode(agent::g_lock_order_mode.load()); }

void SetLockOrderHook(LockOrderHook hook) { agent::g_order_hook.store(hook); }

std::string LockOrderReport() { return agent::LockOrderText(); }

std::string LockOrderReportJson() { return agent::LockOrderJson(); }

uint64_t LockOrderInversions() { return agent::LockOrderInversionCount(); }

void SetHeldLockTracking(bool on) {
  agent::g_held_tracking.store(on);
  agent::UpdateLockTracking();
}

void SetStallReportThreshold(std::chrono::nanoseconds threshold) {
  agent::g_stall_threshold_ns.store(std::max<int64_t>(threshold.count(), 0));
  agent::UpdateLockTracking();
}

void SetLockStallHook(LockStallHook hook) { agent::g_stall_hook.store(hook); }

uint64_t LockStalls() { return agent::g_stalls.load(std::memory_order_relaxed); }

}  // namespace lockprof
