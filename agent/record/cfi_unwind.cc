#include "lockprof/agent/record/cfi_unwind.h"

#include <unwind.h>

#include <cstdint>

#include "lockprof/agent/record/frame_rules.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/stack_trace.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof::agent {

std::atomic<int> g_unwind_mode{int(UnwindMode::kFramePointers)};

void SetUnwindMode(UnwindMode mode) { g_unwind_mode.store(int(mode), std::memory_order_relaxed); }

namespace {

struct Walk {
  uintptr_t entry_cfa;  // The entry function's canonical frame address.
  StackTrace* out;
};

_Unwind_Reason_Code OnFrame(_Unwind_Context* ctx, void* arg) {
  auto* w = static_cast<Walk*>(arg);
  // During the walk a context's CFA is its callee's: the stack pointer at
  // the call. Frames below the entry function (this unwinder, the recorder)
  // report lower ones; the entry function's caller reports the entry's.
  if (_Unwind_GetCFA(ctx) < w->entry_cfa) return _URC_NO_REASON;
  const uintptr_t ip = _Unwind_GetIP(ctx);
  if (ip == 0) return _URC_END_OF_STACK;
  w->out->pcs[w->out->depth++] = ip;
  return w->out->depth == kMaxStackDepth ? _URC_END_OF_STACK : _URC_NO_REASON;
}

// Loads the word at `addr` if it lies in [lo, hi) of this thread's stack.
bool LoadStackWord(uintptr_t addr, uintptr_t lo, uintptr_t hi, uintptr_t* v) {
  if (addr < lo || addr > hi - sizeof(uintptr_t) || addr % sizeof(uintptr_t) != 0) return false;
  *v = *reinterpret_cast<const uintptr_t*>(addr);
  return true;
}

}  // namespace

// Reads other frames' saved words, as libgcc does: not instrumented.
__attribute__((no_sanitize("address"))) bool CaptureStackCfiCached(const void* entry_frame,
                                                                   StackTrace* out) {
  RecorderScope scope;  // _Unwind_Find_FDE: as below.
  // On another stack (a coroutine's) the bounds are unknown: no frame, as
  // the frame-pointer walk. libgcc would read wherever the rules said: a
  // coroutine's entry, jumped to with ordinary CFI, put its return address
  // above an mmap()ed stack, and the capture faulted in the host's lock.
  const uintptr_t hi = OwnStackEnd(entry_frame);
  if (hi == 0) {
    out->depth = 0;
    return true;
  }
  // The caller of the entry function (a frame-pointer frame: {saved rbp,
  // return address}) at its return address: rsp just above that record.
  const auto* record = static_cast<const uintptr_t*>(entry_frame);
  uintptr_t pc = record[1];
  uintptr_t rsp = reinterpret_cast<uintptr_t>(entry_frame) + 2 * sizeof(uintptr_t);
  uintptr_t rbp = record[0];
  StackTrace st;
  // As OnFrame with libgcc: every frame up to and including the one whose
  // rule ends the stack, none with a zero return address.
  while (st.depth < kMaxStackDepth && pc != 0) {
    st.pcs[st.depth++] = pc;
    const FrameRule rule = FindFrameRule(pc);
    if (rule.kind == FrameRule::kEnd || rule.kind == FrameRule::kNoTable) break;
    if (rule.kind != FrameRule::kUnwind) return false;
    const uintptr_t cfa = (rule.cfa_from_rbp ? rbp : rsp) + int64_t(rule.cfa_offset);
    // Each frame's CFA is above the last, within the stack. A rule that
    // leads elsewhere (wrong CFI in hand-written assembly, a frame pointer
    // that code without them left) ends the stack here: libgcc would load
    // from where it leads (a CFA 1 GiB above the stack faulted there).
    if (cfa <= rsp || cfa > hi) break;
    uintptr_t ra;
    if (!LoadStackWord(cfa + int64_t(rule.ra_offset), rsp, hi, &ra)) break;
    if (rule.rbp_saved && !LoadStackWord(cfa + int64_t(rule.rbp_offset), rsp, hi, &rbp)) {
      break;
    }
    rsp = cfa;
    pc = ra;
  }
  *out = st;
  return true;
}

void CaptureStackLibgcc(const void* entry_frame, StackTrace* out) {
  // The unwinder may take libgcc's own lock (objects registered by hand):
  // that lock must not be profiled.
  RecorderScope scope;
  StackTrace cfi;
  // A frame-pointer frame: {saved rbp, return address}, CFA just above.
  Walk w{reinterpret_cast<uintptr_t>(entry_frame) + 2 * sizeof(uintptr_t), &cfi};
  _Unwind_Backtrace(OnFrame, &w);
  if (cfi.depth == 0) return;
  *out = cfi;
}

void CaptureStackCfi(const void* entry_frame, StackTrace* out) {
  StackTrace cached;
  if (CaptureStackCfiCached(entry_frame, &cached)) {
    if (cached.depth > 0) *out = cached;
    return;
  }
  CaptureStackLibgcc(entry_frame, out);
}

}  // namespace lockprof::agent
