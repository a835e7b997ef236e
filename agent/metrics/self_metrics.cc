#include "lockprof/agent/metrics/self_metrics.h"

#include <atomic>
#include <vector>

#include "lockprof/agent/tables/thread_cells.h"

namespace lockprof::agent {

namespace {

// Recording threads bump the sample counters: each gets its own cache line
// so that profiles do not slow each other down.
struct alignas(64) PaddedCounter {
  std::atomic<uint64_t> n;
};

PaddedCounter g_samples[kProfileCount];
std::atomic<uint64_t> g_admin_requests{0};
std::atomic<uint64_t> g_uploads[kProfileCount][kUploadResults];
std::atomic<uint64_t> g_upload_retries{0};
std::atomic<int64_t> g_upload_queue{0};
std::atomic<uint64_t> g_upload_label_changes[kLabelChanges] = {};

// Every recorded event bumps one: through the recording thread's cell
// (tables/thread_cells.h), whose value 0 is the count.
void MoveToCounter(void* target, const int64_t* values) {
  static_cast<std::atomic<uint64_t>*>(target)->fetch_add(uint64_t(values[0]),
                                                         std::memory_order_relaxed);
}

}  // namespace

void CountSampleRecorded(ProfileId id) {
  AddToCell(&g_samples[int(id)].n, MoveToCounter, 0, 1, 1, 0);
}

uint64_t SamplesRecorded(ProfileId id) {
  uint64_t n = 0;
  std::vector<CellValues> cells;
  ReadWithCells(
      &g_samples[int(id)], &g_samples[int(id) + 1],
      [&] { n = g_samples[int(id)].n.load(std::memory_order_relaxed); }, &cells);
  for (const CellValues& c : cells) n += uint64_t(c.values[0]);
  return n;
}

void CountAdminRequest() { g_admin_requests.fetch_add(1, std::memory_order_relaxed); }
uint64_t AdminRequests() { return g_admin_requests.load(std::memory_order_relaxed); }

const char* UploadResultName(UploadResult r) {
  switch (r) {
    case UploadResult::kSuccess:
      return "success";
    case UploadResult::kFailure:
      return "failure";
    case UploadResult::kDropped:
      return "dropped";
  }
  return "unknown";
}

void CountUpload(ProfileId id, UploadResult result) {
  g_uploads[int(id)][int(result)].fetch_add(1, std::memory_order_relaxed);
}
uint64_t Uploads(ProfileId id, UploadResult result) {
  return g_uploads[int(id)][int(result)].load(std::memory_order_relaxed);
}

void CountUploadRetry() { g_upload_retries.fetch_add(1, std::memory_order_relaxed); }
uint64_t UploadRetries() { return g_upload_retries.load(std::memory_order_relaxed); }

const char* LabelChangeName(LabelChange c) {
  switch (c) {
    case LabelChange::kRenamed:
      return "renamed";
    case LabelChange::kTruncated:
      return "truncated";
    case LabelChange::kDropped:
      return "dropped";
  }
  return "unknown";
}

void CountUploadLabelChanges(LabelChange c, uint64_t n) {
  g_upload_label_changes[int(c)].fetch_add(n, std::memory_order_relaxed);
}
uint64_t UploadLabelChanges(LabelChange c) {
  return g_upload_label_changes[int(c)].load(std::memory_order_relaxed);
}

void SetUploadQueueLength(int64_t n) { g_upload_queue.store(n, std::memory_order_relaxed); }
int64_t UploadQueueLength() { return g_upload_queue.load(std::memory_order_relaxed); }

}  // namespace lockprof::agent
