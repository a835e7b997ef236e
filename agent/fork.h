// Knowing, cheaply, that this process is the child of a fork().
//
// After fork() only the forking thread exists in the child; everything the
// other threads were doing is frozen mid-way in the child's copy of memory.
// lockprof state that such a thread could have been in the middle of
// changing is made safe in one of two ways:
//  * Agent mutexes that profile readers take (the symbolizer's, the label
//    registry's) are taken by a pthread_atfork prepare handler, so fork()
//    waits until no thread is inside them (see symbolizer.cc, labels.cc).
//  * Per-lock bookkeeping that cannot be enumerated (the wait ledgers of
//    lockprof's primitives) compares a generation recorded with its data to
//    ForkGeneration(): the child's generation differs, so it knows that
//    every thread it had counted belonged to the parent, and starts afresh.
#ifndef LOCKPROF_AGENT_FORK_H_
#define LOCKPROF_AGENT_FORK_H_

#include <atomic>
#include <cstdint>

namespace lockprof::agent {

// Incremented in the child by a pthread_atfork child handler (registered
// during static initialisation, before main; a fork() from an earlier
// static initialiser is not seen). Constant-initialised to 0.
extern std::atomic<uint32_t> g_fork_generation;

// How many fork()s separate this process from the one that started the
// program: 0 in the original process. One relaxed load.
inline uint32_t ForkGeneration() { return g_fork_generation.load(std::memory_order_relaxed); }

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_FORK_H_
