// The settings of lock-order checking, holder tracking and the stall
// watchdog (agent/lock_order.h), and what happens when one finds something:
// the stderr line, the user's hook, the counter, and kAbort's abort.
#include "lockprof/agent/lock_order.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "lockprof/agent/base/env.h"
#include "lockprof/agent/base/quiet_calls.h"
#include "lockprof/agent/base/strings.h"
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

namespace {

// Appends printf-style text to line[0, size), cutting what does not fit.
void Append(char* line, size_t size, size_t* used, const char* format, ...)
    __attribute__((format(printf, 4, 5)));
void Append(char* line, size_t size, size_t* used, const char* format, ...) {
  if (*used + 1 >= size) return;
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(line + *used, size - *used, format, args);
  va_end(args);
  if (n > 0) *used = std::min(size - 1, *used + size_t(n));
}

// One line on stderr, written whole (fprintf to unbuffered stderr may
// write it in pieces, between other threads' output).
void WriteLine(const char* line, size_t n) {
  while (n > 0) {
    const ssize_t w = write(STDERR_FILENO, line, n);
    if (w <= 0) return;
    line += w;
    n -= size_t(w);
  }
}

}  // namespace

void WriteInversionLines(const Cycle* cycles, int n) {
  RecorderScope recorder;
  NoCancelNoErrno quiet;  // write() is a cancellation point.
  for (int c = 0; c < n; ++c) {
    const Cycle& cycle = cycles[c];
    const CycleEdge& first = cycle.edges[0];
    char line[1024];
    size_t used = 0;
    auto name = [&](const char* n) {
      EmitQuotedName(n, [&](char c) {
        if (used + 1 < sizeof line) line[used++] = c;
      });
    };
    if (cycle.total_edges == 1) {  // AddSelfWait's.
      Append(line, sizeof line, &used, "lockprof: self-deadlock: thread %lld waits for ",
             static_cast<long long>(first.tid));
      name(first.to);
      Append(line, sizeof line, &used, ", which it holds; stack at /debug/lockprof/lock-order\n");
      if (used + 1 >= sizeof line) line[used - 1] = '\n';
      WriteLine(line, used);
      continue;
    }
    Append(line, sizeof line, &used, "lockprof: lock-order inversion (potential deadlock): ");
    for (int i = 0; i < cycle.num_edges; ++i) {
      name(cycle.edges[i].from);
      Append(line, sizeof line, &used, " -> ");
    }
    if (cycle.total_edges > cycle.num_edges) {
      Append(line, sizeof line, &used, "(%d more) -> ", cycle.total_edges - cycle.num_edges);
    }
    name(first.from);
    Append(line, sizeof line, &used, "; thread %lld took ", static_cast<long long>(first.tid));
    name(first.to);
    Append(line, sizeof line, &used, " while holding ");
    name(first.from);
    Append(line, sizeof line, &used, "; stacks at /debug/lockprof/lock-order\n");
    if (used + 1 >= sizeof line) line[used - 1] = '\n';  // Cut: still one line.
    WriteLine(line, used);
  }
}

void NotifyInversion(const Cycle& cycle) {
  // Locks the hook and the report take are not the program's.
  RecorderScope recorder;
  // Inside a lock call, which is no cancellation point (nor may the hook's
  // I/O be one).
  NoCancelNoErrno quiet;
  if (LockOrderHook hook = g_order_hook.load()) {
    LockOrderEdge edges[kMaxCycleEdges];
    for (int i = 0; i < cycle.num_edges; ++i) {
      const CycleEdge& e = cycle.edges[i];
      edges[i] = {e.from, e.to, e.tid, e.pcs, e.depth};
    }
    RunDroppingExceptions([&] { hook(LockOrderInversion{edges, cycle.num_edges}); });
  }
  AbortIfAsked(cycle);
}

void AbortIfAsked(const Cycle& cycle) {
  if (g_lock_order_mode.load() != int(LockOrderMode::kAbort)) return;
  RecorderScope recorder;
  NoCancelNoErrno quiet;
  // Symbolizing allocates: a test suite's abort, where that is fine.
  const std::string text =
      "lockprof: lock-order inversion, aborting (LOCKPROF_LOCK_ORDER=abort): " +
      InversionText(ToInversion(cycle));
  WriteLine(text.data(), text.size());
  std::abort();
}

namespace {

// Bytes of stack below this frame, for the thread's own stack; SIZE_MAX
// for the main thread (its stack grows on demand) or if unknown.
size_t StackLeft() {
  if (syscall(SYS_gettid) == getpid()) return SIZE_MAX;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return SIZE_MAX;
  void* low = nullptr;
  size_t size = 0;
  const bool known = pthread_attr_getstack(&attr, &low, &size) == 0;
  pthread_attr_destroy(&attr);
  const auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (!known || sp < reinterpret_cast<uintptr_t>(low)) return SIZE_MAX;
  return sp - reinterpret_cast<uintptr_t>(low);
}

// Symbolizing a frame takes about 10 KiB of stack; a waiting thread with
// less than this left (one made with PTHREAD_STACK_MIN, 16 KiB, less its
// TLS) gets the holder's frame as an address instead.
constexpr size_t kStackToSymbolize = 64 << 10;

std::string HolderFrame(const LockStall& stall) {
  if (StackLeft() >= kStackToSymbolize) {
    return FirstUserFrame(stall.holder_stack, stall.holder_stack_depth);
  }
  char address[48];
  std::snprintf(address, sizeof address, "%#" PRIxPTR " (little stack left to name it)",
                stall.holder_stack_depth > 0 ? stall.holder_stack[0] : uintptr_t{0});
  return address;
}

}  // namespace

void ReportStalledWait(const LockStall& stall, const char* exited_name) {
  g_stalls.fetch_add(1, std::memory_order_relaxed);
  std::string holder = "holder not tracked";
  if (stall.holder_thread_id != 0) {
    holder = "held by " +
             ThreadLabel(stall.holder_thread_id, stall.holder_exited ? exited_name : nullptr);
    // A holder recorded before since when and where were (lock-order
    // checking alone, or before the watchdog was switched on) has neither.
    holder += stall.holder_stack_depth == 0 && stall.held.count() == 0
                  ? ", since when and where not recorded"
                  : " for " + std::to_string(stall.held.count() / 1000000) + " ms, acquired at " +
                        HolderFrame(stall);
  } else if (LockTrackingOn()) {
    holder = "holder not found";
  }
  // Written with write(2), as the inversion lines are: this runs inside
  // the waiting thread's lock call, which may hold other locks, and stdio
  // would take stderr's lock (a thread holding it that waits for one of
  // them would never get it back) and put an 8 KiB buffer on a stack that
  // may be PTHREAD_STACK_MIN.
  const std::string line = "lockprof: stall: " + ThreadLabel(stall.waiter_thread_id) +
                           " has waited " + std::to_string(stall.waited.count() / 1000000) +
                           " ms for lock " + QuotedName(stall.lock) + ", " + holder +
                           "; see /debug/lockprof/held\n";
  WriteLine(line.data(), line.size());
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
  // At most about a century, so that a wait's start plus the threshold
  // cannot overflow (nanoseconds::max() means "never", and is that).
  constexpr int64_t kCentury = int64_t{100} * 365 * 24 * 3600 * 1'000'000'000;
  agent::g_stall_threshold_ns.store(std::clamp<int64_t>(threshold.count(), 0, kCentury));
  agent::UpdateLockTracking();
}

void SetLockStallHook(LockStallHook hook) { agent::g_stall_hook.store(hook); }

uint64_t LockStalls() { return agent::g_stalls.load(std::memory_order_relaxed); }

}  // namespace lockprof
