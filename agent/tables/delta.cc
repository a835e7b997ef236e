#include "lockprof/agent/tables/delta.h"

#include <algorithm>

namespace lockprof::agent {

std::vector<SlotValues> Subtract(const std::vector<SlotValues>& later,
                                 const std::vector<SlotValues>& earlier) {
  std::vector<std::array<int64_t, 2>> base;
  for (const SlotValues& s : earlier) {
    if (s.slot >= base.size()) base.resize(s.slot + 1, {0, 0});
    base[s.slot] = {s.values[0], s.values[1]};
  }
  std::vector<SlotValues> out;
  for (SlotValues s : later) {
    if (s.slot < base.size()) {
      // Never below zero: `later` may miss values a preempted thread was
      // moving (ReadWithCells gives up waiting for it), and a window shows
      // less, not a negative.
      s.values[0] = std::max<int64_t>(0, Ahead(s.values[0], base[s.slot][0]));
      s.values[1] = std::max<int64_t>(0, Ahead(s.values[1], base[s.slot][1]));
    }
    if (s.values[0] != 0 || s.values[1] != 0) out.push_back(s);
  }
  return out;
}

std::vector<SlotValues> DeltaTracker::Next() {
  std::vector<SlotValues> now;
  ProfileTable(id_).Snapshot(&now);
  std::vector<SlotValues> out;
  for (SlotValues s : now) {
    if (s.slot >= reported_.size()) reported_.resize(s.slot + 1, {0, 0});
    // Reports only what is above the highest value reported so far: a
    // snapshot that misses values a preempted thread was moving
    // (ReadWithCells gives up waiting for it) reports nothing for them now,
    // and they come in a later delta, once, instead of a negative now and
    // the same values again later.
    std::array<int64_t, 2>& reported = reported_[s.slot];
    for (int i = 0; i < 2; ++i) {
      const int64_t current = s.values[i];
      const int64_t gained = Ahead(current, reported[i]);
      s.values[i] = std::max<int64_t>(0, gained);
      if (gained > 0) reported[i] = current;  // The highest so far, modulo 2^64.
    }
    if (s.values[0] != 0 || s.values[1] != 0) out.push_back(s);
  }
  return out;
}

}  // namespace lockprof::agent
