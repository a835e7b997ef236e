#include "lockprof/agent/record/cfi_unwind.h"

#include <unwind.h>

#include <cstdint>

#include "lockprof/agent/record/record.h"

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

}  // namespace

void CaptureStackCfi(const void* entry_frame, StackTrace* out) {
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

}  // namespace lockprof::agent
