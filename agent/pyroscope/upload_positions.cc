#include "lockprof/agent/pyroscope/upload_positions.h"

#include <algorithm>
#include <new>
#include <utility>

namespace lockprof::agent {

Positions ForProfiles(Positions positions, const std::vector<ProfileId>& profiles) {
  Positions out;
  std::vector<DeltaTracker> all = std::move(positions.trackers);
  for (DeltaTracker& t : positions.spare) all.push_back(std::move(t));
  for (ProfileId id : profiles) {
    auto it =
        std::find_if(all.begin(), all.end(), [id](const DeltaTracker& t) { return t.id() == id; });
    if (it != all.end()) {
      out.trackers.push_back(std::move(*it));
      all.erase(it);
    } else {
      out.trackers.emplace_back(id);  // Never uploaded: from the start.
    }
  }
  out.spare = std::move(all);
  out.last_until_ns = positions.last_until_ns;
  return out;
}

Positions UploadPositions::Take(int64_t now_ns) {
  out_ = true;
  Positions taken = std::move(stored_);
  stored_ = Positions{};
  if (in_child_) {
    // The parent's positions: the child starts from its tables as they are,
    // for every profile (one uploaded later too).
    in_child_ = false;
    taken = Positions{};
    for (int i = 0; i < kProfileCount; ++i) {
      taken.spare.emplace_back(ProfileId(i));
      taken.spare.back().Next();
    }
  }
  if (taken.last_until_ns == 0) taken.last_until_ns = now_ns;
  return taken;
}

void UploadPositions::Give(Positions positions) {
  stored_ = std::move(positions);
  out_ = false;
  returned_.notify_all();
}

void UploadPositions::ForgetInChild() {
  out_ = false;
  in_child_ = true;
  // A parent thread waiting in WaitForStop at the fork is counted in the
  // condition variable's state, and glibc's would then wait for it in the
  // child: after one notify_all, the next with a waiter of the child's
  // never returned. Nothing waits on it in the child yet: made anew, not
  // destroyed (pthread_cond_destroy waits for those waiters too).
  new (&returned_) std::condition_variable;
}

}  // namespace lockprof::agent
