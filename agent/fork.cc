#include "lockprof/agent/fork.h"

#include <pthread.h>

namespace lockprof::agent {

std::atomic<uint32_t> g_fork_generation{0};

namespace {
void OnForkChild() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

// This object is linked whenever a primitive reads g_fork_generation, so the
// handler is registered in every program that could need it.
[[maybe_unused]] const int g_registered = pthread_atfork(nullptr, nullptr, &OnForkChild);
}  // namespace

}  // namespace lockprof::agent
