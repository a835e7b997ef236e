// What the uploader does about a failed upload: when to try again, and what
// to tell the user (uploader.cc logs each kind of failure once).
#ifndef LOCKPROF_AGENT_PYROSCOPE_UPLOAD_FAILURE_H_
#define LOCKPROF_AGENT_PYROSCOPE_UPLOAD_FAILURE_H_

#include <chrono>
#include <string>

#include "lockprof/agent/pyroscope/ingest_client.h"
#include "lockprof/agent/uploader.h"

namespace lockprof::agent {

// Before retry `attempt` (1 for the first retry): a random time in
// [d/2, d], d = backoff_base * 2^(attempt-1) capped at backoff_max, so that
// many processes hit by one outage do not retry in step.
std::chrono::milliseconds RetryBackoff(const UploaderOptions& options, int attempt);

// The log line for upload `what` ("the mutex profile upload to URL") that
// failed with `r` after `attempts` attempts, and in *kind the kind of
// failure it is (one line per kind until uploads succeed again).
std::string FailedUploadMessage(const PostOutcome& r, const std::string& what, int attempts,
                                std::string* kind);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PYROSCOPE_UPLOAD_FAILURE_H_
