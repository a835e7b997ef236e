// Counters about lockprof itself (its own health, in /metrics): samples
// recorded per profile, admin requests served, and the uploader's outcomes.
//
// Plain relaxed atomics with static storage: any thread may bump them, from
// static initialisation to exit, without a lock or an allocation. The
// server and the uploader report through these functions so that the
// metrics writer (agent) needs to include neither.
#ifndef LOCKPROF_AGENT_METRICS_SELF_METRICS_H_
#define LOCKPROF_AGENT_METRICS_SELF_METRICS_H_

#include <cstdint>

#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {

// One sampled event was added to profile `id`.
void CountSampleRecorded(ProfileId id);
uint64_t SamplesRecorded(ProfileId id);

// The admin endpoint answered one request (any path, any status).
void CountAdminRequest();
uint64_t AdminRequests();

// Outcome of one profile upload (one profile, one interval).
enum class UploadResult { kSuccess = 0, kFailure = 1, kDropped = 2 };
inline constexpr int kUploadResults = 3;
const char* UploadResultName(UploadResult r);

void CountUpload(ProfileId id, UploadResult result);
uint64_t Uploads(ProfileId id, UploadResult result);

// An upload attempt is being retried.
void CountUploadRetry();
uint64_t UploadRetries();

// Sample labels the uploader changed to fit Pyroscope's rules
// (pyroscope/pyroscope_labels.h), by change.
enum class LabelChange { kRenamed = 0, kTruncated = 1, kDropped = 2 };
inline constexpr int kLabelChanges = 3;
const char* LabelChangeName(LabelChange c);
void CountUploadLabelChanges(LabelChange c, uint64_t n);
uint64_t UploadLabelChanges(LabelChange c);

// Profiles waiting in the upload queue (set by the uploader).
void SetUploadQueueLength(int64_t n);
int64_t UploadQueueLength();

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_METRICS_SELF_METRICS_H_
