#include "lockprof/agent/pyroscope/upload_failure.h"

#include <algorithm>
#include <cstdint>

#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/record/sampler.h"

namespace lockprof::agent {

std::chrono::milliseconds RetryBackoff(const UploaderOptions& o, int attempt) {
  int64_t d = o.backoff_base.count();
  for (int i = 1; i < attempt && d < o.backoff_max.count(); ++i) d *= 2;
  d = std::min<int64_t>(d, o.backoff_max.count());
  const int64_t half = d / 2;
  return std::chrono::milliseconds(half + int64_t(NextRandom() % uint64_t(d - half + 1)));
}

std::string FailedUploadMessage(const PostOutcome& r, const std::string& what, int attempts,
                                std::string* kind) {
  if (r.status == 0 && r.maybe_received) {
    *kind = "no answer";
    return what + " got no complete answer once sent: " + r.error +
           " (not retried: the server may have stored it, and would count a copy twice)";
  }
  if (r.status == 0) {
    *kind = "transport";
    return what + " failed after " + std::to_string(attempts) + " attempt(s): " + r.error +
           " (is Pyroscope reachable at this URL?)";
  }
  *kind = "status " + std::to_string(r.status);
  // The body and Location are the server's words: escaped, so that they
  // neither forge log lines nor send the terminal escape sequences.
  std::string msg =
      what + " got HTTP " + std::to_string(r.status) + ": \"" + EscapedForLog(r.body) + "\"";
  if (r.status == 401 || r.status == 403) {
    msg += "; check the credentials (basic auth user/password, bearer token) and tenant id";
  } else if (r.status == 404) {
    msg += "; check the URL's path prefix";
  } else if (r.status >= 300 && r.status < 400) {
    msg +=
        "; redirect to \"" + EscapedForLog(r.location) + "\" not followed: use the final address";
  } else if (r.retryable()) {
    msg += "; gave up after " + std::to_string(attempts) + " attempts";
  }
  if (!r.retryable()) msg += " (not retried)";
  return msg;
}

}  // namespace lockprof::agent
