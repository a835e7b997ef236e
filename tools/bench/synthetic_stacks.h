// Synthetic call stacks for filling profile tables in benchmarks: stack
// number i is a distinct sequence of return addresses inside real functions of
// this binary, so building a profile from them symbolizes real code (DWARF
// lines included) instead of unknown addresses.
#ifndef LOCKPROF_TOOLS_BENCH_SYNTHETIC_STACKS_H_
#define LOCKPROF_TOOLS_BENCH_SYNTHETIC_STACKS_H_

#include <cstdint>

#include "lockprof/agent/tables/stack_table.h"

namespace bench {

// Distinct return addresses the stacks are drawn from (kPoolFunctions
// functions, several addresses in each).
inline constexpr int kPoolFunctions = 512;
inline constexpr int kAddressesPerFunction = 4;

// Stack number `i` (distinct for every i < 2^24), `depth` frames deep
// (3 <= depth <= kMaxStackDepth).
void SyntheticStack(uint64_t i, int depth, lockprof::agent::StackTrace* out);

// Adds stacks first .. first+n-1 to `table`, each once, with values (1, 1000).
void AddSyntheticStacks(lockprof::agent::StackTable& table, uint64_t first, int n, int depth);

}  // namespace bench

#endif  // LOCKPROF_TOOLS_BENCH_SYNTHETIC_STACKS_H_
