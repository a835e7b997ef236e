// Continuous profiling: uploads lockprof's profiles to Pyroscope.
//
//   lockprof::UploaderOptions o;
//   o.url = "http://pyroscope:4040";
//   o.app_name = "checkout";
//   o.labels = {{"env", "prod"}, {"region", "eu-west-1"}};
//   if (absl::Status s = lockprof::StartUploader(o); !s.ok()) { ...report s... }
//   ...
//   lockprof::StopUploader();  // At shutdown: sends the last interval.
//
// Or with no code change, from the environment at program start:
//   LOCKPROF_PYROSCOPE_URL=http://pyroscope:4040   (starts the uploader)
//   LOCKPROF_PYROSCOPE_APP=checkout                (default: the program's name)
//   LOCKPROF_PYROSCOPE_LABELS=env=prod,region=eu-west-1
//   LOCKPROF_PYROSCOPE_BASIC_AUTH_USER / _PASSWORD, LOCKPROF_PYROSCOPE_BEARER_TOKEN,
//   LOCKPROF_PYROSCOPE_TENANT_ID (X-Scope-OrgID),
//   LOCKPROF_PYROSCOPE_HEADERS=Name=value,Name2=value2,
//   LOCKPROF_PYROSCOPE_INTERVAL=15 (seconds), LOCKPROF_PYROSCOPE_PROFILES=mutex,block
// A bad value is reported once on stderr and the uploader does not start;
// the report never quotes a URL's user info or query, nor a header's value
// (they may hold a password or a token). Any other LOCKPROF_PYROSCOPE_
// variable (a misspelt one) is named on stderr as ignored.
//
// Both: the environment wins the URL; the call in code succeeds and takes
// over. StartUploader(o) with LOCKPROF_PYROSCOPE_URL set uploads to that URL
// with o's other settings (app name, labels, credentials, interval...),
// says once which URL it uses, and returns OK. If the environment started
// an uploader, the new one continues where it was (the same delta positions
// and interval start, and its queue, each queued interval still sent under
// the name and labels it was collected with), so no interval is uploaded
// twice or lost; only a request in flight at that moment is aborted, and
// counted dropped. A LOCKPROF_PYROSCOPE_URL that is not valid leaves o.url in use.
//
// What is sent: every `interval` (default 15 s, as pyroscope-go), the delta
// of each profile for that interval (what accumulated since the previous
// upload; the first one covers everything since the process started), one
// POST {url}/ingest per profile, exactly as Pyroscope's Go client sends it
// (see pyroscope_protocol.h). A profile is sent while its sampler is on, or
// whenever its delta is not empty. Consecutive uploads of a profile add up
// to its cumulative profile, with no gap and no overlap, across stops and
// starts too: an uploader started after another stopped sends what is new
// since that one's last upload (what the process recorded while none ran
// goes in its first interval). A fork()ed child's first uploader starts
// from what its tables hold then: the parent uploads its own history. A
// start waits for a stop in progress on another thread to finish.
//
// What it never does: make an application thread wait, or grow without
// bound. Profiles are built and sent by two background threads; a bounded
// queue (queue_capacity profiles) sits between them and drops its oldest
// profile when full, counting it in /metrics (lockprof_uploads_total
// {result="dropped"}). Looking up the host's name, connecting, each write
// and each read of a request time out after request_timeout, the whole
// request after twice that; a stop or the exit aborts each of them,
// the lookup included (a resolver that never answers does not hold them).
// Connection errors and 5xx, 408 and 429 answers are retried (max_attempts
// in all) after exponential backoff with jitter; other 4xx answers are not
// retried, and are logged once with the server's message. Nor is a request
// that got no answer once sent (a read timeout, a reset): the server may
// have stored it, and would add a copy to it (pyroscope-go never retries).
// A server that is down or hangs for an hour costs one queue of profiles.
// Pyroscope refuses a whole upload if one sample's label breaks its rules:
// the sample labels sent (lock names, ScopedLabels) are fitted to them
// (pyroscope/pyroscope_labels.h: names made Prometheus names, values cut to
// 2048 bytes, labels past 30 names per series dropped), counted in /metrics
// (lockprof_upload_labels_changed_total{change}).
// An answer's body is read as sent, never inflated, and no further than
// 64 KiB: a longer one (a body that never ends, a gzip bomb) fails the
// upload, which is not retried (the server has the request). The server's
// words quoted in the log (its answer, a redirect's Location) have control
// characters and invalid UTF-8 escaped as \xNN: each message is one line.
//
// Not async-signal-safe; Start and Stop are thread-safe.
#ifndef LOCKPROF_AGENT_UPLOADER_H_
#define LOCKPROF_AGENT_UPLOADER_H_

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "lockprof/agent/base/export.h"

namespace lockprof {

struct UploaderOptions {
  // Pyroscope's address: http[s]://host[:port][/path prefix], the prefix
  // as it goes on the wire (percent-encoded: a space is refused).
  std::string url;
  // The service's name (Pyroscope's service_name): letters, digits, "_.-/".
  std::string app_name;
  // Static labels on every profile (Prometheus-style names).
  std::vector<std::pair<std::string, std::string>> labels;

  // Authentication: Basic (user and password), or a bearer token, not both.
  std::string basic_auth_user;
  std::string basic_auth_password;
  std::string bearer_token;
  // Sent as X-Scope-OrgID (multi-tenant Pyroscope, Grafana Cloud).
  std::string tenant_id;
  // Extra HTTP headers (e.g. for a proxy in front of Pyroscope).
  std::vector<std::pair<std::string, std::string>> headers;

  // Profiles to upload: any of "mutex", "block", "hold", "cas"; empty: all.
  std::vector<std::string> profiles;

  std::chrono::milliseconds interval{15000};
  // Timeout of each step of an HTTP request (connect, each write, each
  // read); the whole request's deadline is twice this.
  std::chrono::milliseconds request_timeout{10000};
  // Attempts per profile, the first one included.
  int max_attempts = 3;
  // Backoff before retry n (1-based): a random time between half and all
  // of min(backoff_max, backoff_base * 2^(n-1)).
  std::chrono::milliseconds backoff_base{1000};
  std::chrono::milliseconds backoff_max{30000};
  // Profiles waiting to be sent, at most (the oldest is dropped).
  size_t queue_capacity = 32;
  // StopUploader() sends the last interval and what is queued until this
  // deadline, then drops the rest.
  std::chrono::milliseconds shutdown_timeout{5000};

  // Where the uploader's messages go (one line each, no newline); default:
  // stderr, prefixed "lockprof: uploader: ". Called on the uploader's
  // threads; it must not call StartUploader or StopUploader.
  void (*log)(const std::string& message) = nullptr;
};

// Validates `options` and starts uploading (to LOCKPROF_PYROSCOPE_URL if
// set: see above). Errors: InvalidArgument with what to fix (malformed URL,
// empty or bad app name, a label Pyroscope would reject, ...);
// AlreadyExists if an uploader started by code is running (one the
// environment started is taken over).
LOCKPROF_EXPORT absl::Status StartUploader(const UploaderOptions& options);

// Options from the LOCKPROF_PYROSCOPE_* variables (see above). Returns
// NotFound if LOCKPROF_PYROSCOPE_URL is unset, InvalidArgument if a value
// is malformed.
LOCKPROF_EXPORT absl::Status UploaderOptionsFromEnvironment(UploaderOptions* options);

// Collects the last interval, sends it and anything queued within the
// shutdown deadline, and stops the threads. No-op if none runs. If an
// uploader still runs at exit (std::exit or return from main), lockprof
// stops it the same way, except that an empty last interval is not sent
// and no request is retried (a short-lived program run many times must not
// pay an unreachable server seconds at each exit): StartUploader registers
// that exit flush after
// warming up the HTTP client (see WarmUpHttpClient in ingest_client.h), so
// it runs before the destructors of the statics a request uses. An exit
// while StopUploader() runs on another thread waits for that stop, until
// its shutdown deadline and a second at most. Calling it yourself before
// leaving main is still the clearest.
LOCKPROF_EXPORT void StopUploader();

// True while an uploader runs.
LOCKPROF_EXPORT bool UploaderRunning();

}  // namespace lockprof

#endif  // LOCKPROF_AGENT_UPLOADER_H_
