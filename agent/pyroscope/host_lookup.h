// Looks up the uploader's host name with a deadline and a way to give up.
//
// cpp-httplib resolves the host inside its connect with getaddrinfo(),
// which neither its timeouts nor its abort reach: a resolver that never
// answers held a request, and with it StopUploader() and the program's exit,
// for the resolver's own timeouts (5 s per server and attempt by default,
// up to minutes with several servers). Here the lookup runs on a thread of
// its own, and the caller waits for it only until its deadline or until
// cancelled. A lookup that has not answered by then is left to finish on
// its thread; at most kMaxUnanswered lookups run at once (past that,
// lookups fail at once), so a resolver that never answers costs a bounded
// number of threads and bytes.
#ifndef LOCKPROF_AGENT_PYROSCOPE_HOST_LOOKUP_H_
#define LOCKPROF_AGENT_PYROSCOPE_HOST_LOOKUP_H_

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace lockprof::agent {

struct HostAddresses {
  // Numeric addresses ("192.0.2.7", "2001:db8::7"), in the resolver's order
  // of preference; the host itself if it is an address already.
  std::vector<std::string> numeric;
  std::string error;  // Why there are none; empty when some were found.
};

inline constexpr int kMaxUnanswered = 2;

// The addresses of `host` for a TCP connection. Returns by `deadline`, or
// within ~20 ms of `cancelled` returning true (it is polled), whatever the
// resolver does. Thread-safe.
HostAddresses FindHostAddresses(const std::string& host,
                                std::chrono::steady_clock::time_point deadline,
                                const std::function<bool()>& cancelled);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PYROSCOPE_HOST_LOOKUP_H_
