#include "lockprof/agent/tables/delta.h"

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
      s.values[0] -= base[s.slot][0];
      s.values[1] -= base[s.slot][1];
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
    std::array<int64_t, 2>& prev = reported_[s.slot];
    const std::array<int64_t, 2> current{s.values[0], s.values[1]};
    s.values[0] -= prev[0];
    s.values[1] -= prev[1];
    prev = current;
    if (s.values[0] != 0 || s.values[1] != 0) out.push_back(s);
  }
  return out;
}

}  // namespace lockprof::agent
