// One HTTP POST to Pyroscope's /ingest, with a deadline and a way to abort
// it from another thread. Wraps cpp-httplib's client (kept out of this
// header: it is a private dependency of the agent).
#ifndef LOCKPROF_AGENT_PYROSCOPE_INGEST_CLIENT_H_
#define LOCKPROF_AGENT_PYROSCOPE_INGEST_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lockprof/agent/pyroscope/pyroscope_protocol.h"

namespace lockprof::agent {

struct PostOutcome {
  int status = 0;        // HTTP status; 0 when no answer came.
  std::string error;     // Why no answer came (status 0).
  std::string body;      // The server's answer, truncated.
  std::string location;  // Location header of a redirect.
  // No answer came, but the request may have reached the server: it failed
  // after the request was sent (a reset, a read timeout), or was aborted.
  bool maybe_received = false;

  bool ok() const { return status >= 200 && status < 300; }
  // Worth another attempt: a server error, 408 or 429, or no answer to a
  // request the server cannot have received (no connection). One that it
  // may have received is not sent again: Pyroscope would add the copy to
  // what it stored (each upload is new to it), counting an interval twice.
  bool retryable() const {
    return (status == 0 && !maybe_received) || status >= 500 || status == 408 || status == 429;
  }
};

// Makes cpp-httplib's client create, now, the function-local statics it
// otherwise creates during its first exchange (its response parsers), and
// initialises OpenSSL: one POST over loopback to a one-shot responder of our
// own. At exit, statics are destroyed in the reverse order of their
// creation, interleaved with atexit handlers; an exit flush registered after
// this call runs while all of them still exist. Once per process; later
// calls return at once. Takes a few milliseconds; opens a listening socket
// on 127.0.0.1 (an ephemeral port) for that long.
void WarmUpHttpClient();

class IngestClient {
 public:
  // `headers` go on every request. `timeout` bounds connecting, each send
  // and each receive; the uploader enforces the request's total deadline
  // with Abort().
  IngestClient(const pyroscope::Endpoint& endpoint,
               std::vector<std::pair<std::string, std::string>> headers,
               std::chrono::milliseconds timeout);
  ~IngestClient();
  IngestClient(const IngestClient&) = delete;
  IngestClient& operator=(const IngestClient&) = delete;

  // Sends one request; blocks until an answer, an error or Abort().
  // Redirects are not followed (pyroscope-go does not follow them either).
  PostOutcome Post(const std::string& path_and_query, const pyroscope::MultipartBody& body);

  // Makes the request in flight, if any, fail now. Thread-safe.
  void Abort();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PYROSCOPE_INGEST_CLIENT_H_
