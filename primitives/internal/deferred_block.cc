#include "lockprof/primitives/internal/deferred_block.h"

#include <algorithm>

#include "lockprof/agent/record/record.h"

namespace lockprof::internal {
namespace {

struct DeferredBlock {
  const void* lock;
  int64_t wait_ns;
  agent::EventTags tags;
  agent::StackTrace stack;
};

// Touched only on slow paths (after a sleep, at a slow unlock that has
// events parked: agent::tls_state.deferred_blocks, its count, says which),
// so a plain thread_local: no room taken from the initial-exec TLS of
// agent::tls_state.
struct DeferredBlocks {
  int count = 0;
  DeferredBlock events[kMaxDeferredBlocks];
};
thread_local DeferredBlocks t_deferred;

}  // namespace

void DeferBlock(const void* lock, int64_t wait_ns, const agent::EventTags& tags,
                const agent::StackTrace& stack) {
  DeferredBlocks& d = t_deferred;
  if (d.count == kMaxDeferredBlocks) {
    // Recorded inside the critical section: not reported to the slow-acquire
    // hook, which may take this very lock (slow_acquire.h).
    agent::RecordBlock(wait_ns, tags, stack, /*may_call_hook=*/false);
    return;
  }
  DeferredBlock& e = d.events[d.count++];
  agent::tls_state.deferred_blocks = d.count;
  e.lock = lock;
  e.wait_ns = wait_ns;
  e.tags = tags;
  // Only the frames captured: usually a few dozen bytes, not the whole array.
  e.stack.depth = stack.depth;
  std::copy_n(stack.pcs, stack.depth, e.stack.pcs);
}

void RecordParkedBlocks(const void* lock, bool may_call_hook, const agent::EventTags* released) {
  DeferredBlocks& d = t_deferred;
  for (int i = 0; i < d.count;) {
    if (d.events[i].lock != lock) {
      ++i;
      continue;
    }
    // Moved out first: RecordBlock may call the slow-acquire hook, which may
    // lock and unlock lockprof locks on this thread (and so get here).
    DeferredBlock e = d.events[i];
    if (released != nullptr) {
      e.tags.lock = released->lock;
      e.tags.lock_id = released->lock_id;
    }
    d.events[i] = d.events[--d.count];
    agent::tls_state.deferred_blocks = d.count;
    agent::RecordBlock(e.wait_ns, e.tags, e.stack, may_call_hook);
  }
}

bool HasParkedBlocks(const void* lock) {
  const DeferredBlocks& d = t_deferred;
  for (int i = 0; i < d.count; ++i) {
    if (d.events[i].lock == lock) return true;
  }
  return false;
}

}  // namespace lockprof::internal
