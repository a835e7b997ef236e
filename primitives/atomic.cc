#include "lockprof/primitives/atomic.h"

#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/record.h"

namespace lockprof::internal {

ABSL_ATTRIBUTE_NOINLINE void RecordCasLoop(int64_t retries, int64_t start_ns, const char* name) {
  const int64_t delay_ns = agent::MonotonicNanos() - start_ns;
  agent::RecordCasRetries(retries, delay_ns, agent::EventTags{name}, __builtin_frame_address(0));
  // Our frame is the stack walk's anchor: it must still exist while the
  // recorder walks it, so the call above must not become a tail jump.
  asm volatile("");
}

}  // namespace lockprof::internal
