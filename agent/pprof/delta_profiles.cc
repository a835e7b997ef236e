#include "lockprof/agent/delta_profiles.h"

#include "lockprof/agent/pprof/pprof_encoder.h"
#include "lockprof/agent/pprof/resolved_profile.h"
#include "lockprof/agent/record/clock.h"

namespace lockprof {

namespace {

absl::Status WriteGzipped(const agent::ProfileInfo& info, const std::vector<agent::SlotValues>& d,
                          int64_t duration_nanos, std::ostream& out) {
  const agent::ResolvedProfile rp = agent::Resolve(info, d, agent::WallNanos(), duration_nanos);
  const std::string bytes = agent::Gzip(agent::EncodePprof(rp));
  if (bytes.empty()) return absl::InternalError("failed to compress profile");
  out << bytes;
  return out ? absl::OkStatus() : absl::UnknownError("write failed");
}

}  // namespace

DeltaProfiler::DeltaProfiler(std::string_view name) : info_(agent::FindProfile(name)) {}

absl::Status DeltaProfiler::WriteTo(std::ostream& out) {
  if (info_ == nullptr) return absl::NotFoundError("Unknown profile");
  std::vector<agent::SlotValues> delta;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!tracker_) tracker_ = std::make_unique<agent::DeltaTracker>(info_->id);
    delta = tracker_->Next();
  }
  // Keys are stable for the life of the process: resolving outside the lock
  // lets a slow symbolization overlap the next scrape's snapshot.
  return WriteGzipped(*info_, delta, 0, out);
}

namespace agent {

ProfileWindow::ProfileWindow(const ProfileInfo& info) : info_(info), start_mono_(MonotonicNanos()) {
  Table(info.id).Snapshot(&start_);
}

absl::Status ProfileWindow::WriteTo(std::ostream& out) const {
  std::vector<SlotValues> now;
  Table(info_.id).Snapshot(&now);
  const int64_t duration = MonotonicNanos() - start_mono_;
  return WriteGzipped(info_, Subtract(now, start_), duration, out);
}

}  // namespace agent
}  // namespace lockprof
