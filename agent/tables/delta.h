// Deltas of a profile between two moments, computed on the raw tables.
//
// Because table slots never move (see stack_table.h), a delta is a per-slot
// subtraction of two value arrays: no profile is serialised, parsed or merged
// to compute it (the cost godeltaprof exists to avoid in Go). Used by
// ?seconds=N, the /debug/pprof/delta_* endpoints and the uploader.
#ifndef LOCKPROF_AGENT_TABLES_DELTA_H_
#define LOCKPROF_AGENT_TABLES_DELTA_H_

#include <array>
#include <cstdint>
#include <vector>

#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {

// later - earlier, slot by slot, never below zero; slots absent from
// `earlier` count from 0. Slots whose difference is zero in both values are
// dropped. (A snapshot may miss values a thread is moving between a cell and
// its slot: thread_cells.h. Cumulative values never fall, so a negative
// difference is such a miss, and is shown as nothing rather than negative.)
//
// Cumulative values wrap around at 2^64 (stack_table.h), and differences
// are taken modulo 2^64 (Ahead): exact across a wrap, as long as one window
// gains less than 2^63 (292 years of waiting).
inline int64_t Ahead(int64_t later, int64_t earlier) {
  return int64_t(uint64_t(later) - uint64_t(earlier));
}
std::vector<SlotValues> Subtract(const std::vector<SlotValues>& later,
                                 const std::vector<SlotValues>& earlier);

// Remembers what it last reported for one profile, godeltaprof-style: each
// Next() returns what accumulated since the previous Next() (the first call:
// since the process started), never a negative value: what a snapshot
// missed comes in a later delta, once. Memory: two int64 per table slot, allocated as
// slots appear. Not thread-safe: each consumer owns its tracker.
class DeltaTracker {
 public:
  explicit DeltaTracker(ProfileId id) : id_(id) {}

  std::vector<SlotValues> Next();
  ProfileId id() const { return id_; }

 private:
  ProfileId id_;
  std::vector<std::array<int64_t, 2>> reported_;  // Indexed by slot.
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_TABLES_DELTA_H_
