// The uploader's two threads and its queue (uploader.cc runs one at a
// time, in a slot): the collector builds each interval's deltas and queues
// them, the sender posts them to Pyroscope with retries.
#ifndef LOCKPROF_AGENT_PYROSCOPE_UPLOAD_LOOP_H_
#define LOCKPROF_AGENT_PYROSCOPE_UPLOAD_LOOP_H_

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/agent/pprof/profile_builder.h"
#include "lockprof/agent/pyroscope/ingest_client.h"
#include "lockprof/agent/pyroscope/pyroscope_labels.h"
#include "lockprof/agent/pyroscope/upload_failure.h"
#include "lockprof/agent/pyroscope/upload_positions.h"
#include "lockprof/agent/pyroscope/uploader_config.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/own_thread.h"
#include "lockprof/agent/tables/delta.h"

namespace lockprof::agent {
// Included by uploader.cc alone: internal linkage, so that nothing of it
// (its threads' std::thread instantiations included) is exported from
// liblockprof.so.
namespace {  // NOLINT(build/namespaces)

using Clock = std::chrono::steady_clock;

// One profile's delta for one interval, ready to send.
struct Job {
  ProfileId id;
  int64_t from_ns;
  int64_t until_ns;
  std::string profile;  // Gzipped profile.proto.
  // The series (application name and labels) of the uploader that collected
  // it: a successor that sends it under another name keeps its own.
  std::string series;
};

// Two threads: the collector builds each interval's deltas and enqueues
// them (and watches the deadline of the request in flight); the sender
// posts them, with retries. They share only the queue and a few flags,
// under mu_; nothing an application thread touches is ever held.
class Uploader {
 public:
  // Starts from `positions` (upload_positions.h), or takes over from
  // `previous` (stopped and emptied here) where it was: the same positions
  // and its queue, so that no interval is uploaded twice or lost across the
  // change.
  Uploader(UploaderConfig config, Positions positions, Uploader* previous)
      : c_(std::move(config)), client_(c_.endpoint, c_.headers, c_.options.request_timeout) {
    if (previous != nullptr) previous->HandOver(&positions, &queue_);
    positions = ForProfiles(std::move(positions), c_.profiles);
    trackers_ = std::move(positions.trackers);
    spare_ = std::move(positions.spare);
    last_until_ns_ = positions.last_until_ns;
    SetUploadQueueLength(int64_t(queue_.size()));
    collector_ = TryStartOwnThread([this] { CollectLoop(); });
    if (collector_.joinable()) sender_ = TryStartOwnThread([this] { SendLoop(); });
    if (!sender_.joinable()) Abandon();
  }

  // False if its threads could not be started (the process at its thread
  // limit): it uploads nothing, and its positions are to be given back.
  bool running() const { return sender_.joinable(); }

  // Collects the last interval, sends what it can until the shutdown
  // deadline, then abandons the rest.
  void Stop() { Stop(c_.options.shutdown_timeout); }

  // As Stop, for a process that is exiting, which may be a short-lived one
  // run many times (a script's commands, under LD_PRELOAD): an empty last
  // interval is not sent, and no request is retried, so that an unreachable
  // server costs an exit a failed attempt per profile, not the shutdown
  // deadline's seconds of backoff.
  void StopAtExit() {
    {
      std::lock_guard<std::mutex> l(mu_);
      at_exit_ = true;
    }
    Stop();
  }

  std::chrono::milliseconds shutdown_timeout() const { return c_.options.shutdown_timeout; }

  // Once stopped: where its uploads ended, for the next uploader.
  Positions TakePositions() {
    return Positions{std::move(trackers_), std::move(spare_), last_until_ns_};
  }

 private:
  // Stops at once, without collecting the last interval, and gives its delta
  // positions, the end of its last interval and its queue to a successor,
  // which collects and sends them. A request in flight is aborted, and
  // counted dropped: whether the server kept it cannot be known.
  void HandOver(Positions* positions, std::deque<Job>* queue) {
    {
      std::lock_guard<std::mutex> l(mu_);
      handing_over_ = true;
    }
    Stop(std::chrono::milliseconds(0));
    *positions = TakePositions();
    *queue = std::move(queue_);
  }

  // The constructor's failure: stops the collector, if it started, without a
  // last interval; the queue it took over is dropped, and counted so.
  void Abandon() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
      handing_over_ = true;
    }
    cv_.notify_all();
    if (collector_.joinable()) collector_.join();
    for (const Job& job : queue_) CountUpload(job.id, UploadResult::kDropped);
    queue_.clear();
    SetUploadQueueLength(0);
  }

  void Stop(std::chrono::milliseconds grace) {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
      shutdown_deadline_ = Clock::now() + grace;
    }
    cv_.notify_all();
    collector_.join();
    std::unique_lock<std::mutex> l(mu_);
    while (!sender_done_) {
      const auto now = Clock::now();
      if (now >= shutdown_deadline_) abort_ = true;
      const bool overdue = now >= inflight_deadline_;
      if (overdue) inflight_deadline_ = Clock::time_point::max();
      // Past the shutdown deadline, abort repeatedly: a request may be
      // between "about to send" and "connected" when the first abort lands.
      if (abort_ || overdue) AbortUnlocked(l);
      cv_.notify_all();
      cv_.wait_until(l, std::min({shutdown_deadline_, inflight_deadline_,
                                  now + std::chrono::milliseconds(abort_ ? 10 : 1000)}));
    }
    l.unlock();
    sender_.join();
  }

  void CollectLoop() {
    auto next = Clock::now() + c_.options.interval;
    std::unique_lock<std::mutex> l(mu_);
    while (!stopping_) {
      cv_.wait_until(l, std::min(next, inflight_deadline_));
      const auto now = Clock::now();
      if (now >= inflight_deadline_) {
        inflight_deadline_ = Clock::time_point::max();
        AbortUnlocked(l);
      }
      if (stopping_ || now < next) continue;
      l.unlock();
      Collect();
      l.lock();
      next += c_.options.interval;
      if (next <= now) next = now + c_.options.interval;
    }
    const bool last = !handing_over_, at_exit = at_exit_;
    l.unlock();
    if (last) Collect(at_exit);  // The last interval (a successor collects it otherwise).
    l.lock();
    collector_done_ = true;
    cv_.notify_all();
  }

  // Aborts the request in flight without holding mu_: cpp-httplib's abort
  // waits for a connect in progress, and the sender needs mu_ meanwhile.
  void AbortUnlocked(std::unique_lock<std::mutex>& l) {
    l.unlock();
    client_.Abort();
    l.lock();
  }

  // `skip_empty`: send no empty profile.
  void Collect(bool skip_empty = false) {
    const int64_t from = last_until_ns_;
    const int64_t now = MonotonicNanos();
    const int64_t until = IntervalEnd(from, WallNanos(), now - last_collect_mono_ns_);
    last_until_ns_ = until;
    last_collect_mono_ns_ = now;
    for (DeltaTracker& tracker : trackers_) {
      const std::vector<SlotValues> delta = tracker.Next();
      const ProfileInfo& info = ProfileInfoFor(tracker.id());
      // Sent while its sampler is on, or when not empty; the CAS profile only
      // when not empty (few programs use lockprof::Atomic).
      if (delta.empty() && (skip_empty || info.id == ProfileId::kCas || !info.SamplerEnabled())) {
        continue;
      }
      BuildOptions options;
      options.delta = &delta;
      options.time_nanos = from;
      options.duration_nanos = until - from;
      std::vector<std::string> series_names;
      for (const auto& [name, value] : c_.options.labels) series_names.push_back(name);
      options.fit_labels = pyroscope::LabelFitter(std::move(series_names));
      absl::StatusOr<std::string> profile = BuildProfile(info, options);
      if (!profile.ok()) {
        CountUpload(info.id, UploadResult::kFailure);
        std::lock_guard<std::mutex> l(mu_);
        LogOnceLocked("build", std::string("the ") + info.name + " profile was not built: " +
                                   std::string(profile.status().message()));
        continue;
      }
      Enqueue(Job{info.id, from, until, *std::move(profile), c_.series_name});
    }
  }

  void Enqueue(Job job) {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(std::move(job));
    while (queue_.size() > c_.options.queue_capacity) {
      // The newest data is the most useful once the server is back.
      CountUpload(queue_.front().id, UploadResult::kDropped);
      queue_.pop_front();
      LogOnceLocked("queue full", "upload queue full: dropping the oldest profiles");
    }
    SetUploadQueueLength(int64_t(queue_.size()));
    cv_.notify_all();
  }

  void SendLoop() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [&] { return !queue_.empty() || collector_done_ || abort_; });
      if (abort_ || queue_.empty()) break;
      Job job = std::move(queue_.front());
      queue_.pop_front();
      SetUploadQueueLength(int64_t(queue_.size()));
      l.unlock();
      Send(job);
      l.lock();
    }
    if (!handing_over_) {  // A successor sends the queue otherwise.
      for (const Job& job : queue_) CountUpload(job.id, UploadResult::kDropped);
      queue_.clear();
      SetUploadQueueLength(0);
    }
    sender_done_ = true;
    cv_.notify_all();
  }

  void Send(const Job& job) {
    const std::string path =
        c_.endpoint.IngestPath() + pyroscope::IngestQuery(job.series, job.from_ns, job.until_ns);
    const pyroscope::MultipartBody body = pyroscope::BuildMultipart(
        job.profile, pyroscope::SampleTypeConfig(job.id), pyroscope::RandomBoundary());
    const char* name = ProfileInfoFor(job.id).name;
    for (int attempt = 1;; ++attempt) {
      {
        std::lock_guard<std::mutex> l(mu_);
        if (abort_) return CountUpload(job.id, UploadResult::kDropped);
        // Twice the timeout of each step: a server that never answers
        // fails the read first (request_timeout after the request was
        // sent), as what it is, and is not sent the request again
        // (PostOutcome::retryable); this bounds a server that trickles.
        inflight_deadline_ = Clock::now() + 2 * c_.options.request_timeout;
      }
      cv_.notify_all();  // The collector now watches this deadline.
      const PostOutcome r = client_.Post(path, body);
      std::unique_lock<std::mutex> l(mu_);
      inflight_deadline_ = Clock::time_point::max();
      if (!r.ok() && abort_) return CountUpload(job.id, UploadResult::kDropped);
      if (r.ok()) {
        if (!logged_.empty()) LogLocked("uploads succeed again");
        logged_.clear();
        return CountUpload(job.id, UploadResult::kSuccess);
      }
      if (!r.retryable() || attempt >= c_.options.max_attempts || at_exit_) {
        Report(r, name, attempt);
        return CountUpload(job.id, UploadResult::kFailure);
      }
      CountUploadRetry();
      // An exit during the backoff ends it, without the retry: at exit no
      // request is retried (StopAtExit).
      cv_.wait_until(l, Clock::now() + RetryBackoff(c_.options, attempt),
                     [&] { return abort_ || at_exit_; });
      if (at_exit_ && !abort_) {
        Report(r, name, attempt);
        return CountUpload(job.id, UploadResult::kFailure);
      }
    }
  }

  // Logs a failed upload once per kind of failure until uploads succeed.
  void Report(const PostOutcome& r, const char* profile, int attempts) {
    const std::string what = std::string("the ") + profile + " profile upload to " +
                             c_.endpoint.Origin() + c_.endpoint.IngestPath();
    std::string kind;
    const std::string message = FailedUploadMessage(r, what, attempts, &kind);
    LogOnceLocked(kind, message);
  }

  void LogOnceLocked(const std::string& key, const std::string& message) {
    if (logged_.insert(key).second) LogLocked(message);
  }

  void LogLocked(const std::string& message) {
    if (c_.options.log != nullptr) {
      c_.options.log(message);
    } else {
      std::fprintf(stderr, "lockprof: uploader: %s\n", message.c_str());
    }
  }

  const UploaderConfig c_;
  IngestClient client_;
  std::vector<DeltaTracker> trackers_;               // Collector thread only.
  std::vector<DeltaTracker> spare_;                  // Of profiles not uploaded now.
  int64_t last_until_ns_;                            // Collector thread only.
  int64_t last_collect_mono_ns_ = MonotonicNanos();  // Collector thread only.

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  bool collector_done_ = false;  // The last interval is queued.
  bool abort_ = false;           // Past the shutdown deadline.
  bool handing_over_ = false;    // To a successor: keep the queue.
  bool at_exit_ = false;         // StopAtExit's.
  bool sender_done_ = false;
  Clock::time_point shutdown_deadline_ = Clock::time_point::max();
  Clock::time_point inflight_deadline_ = Clock::time_point::max();
  std::set<std::string> logged_;
  std::thread collector_;
  std::thread sender_;
};

}  // namespace
}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PYROSCOPE_UPLOAD_LOOP_H_
