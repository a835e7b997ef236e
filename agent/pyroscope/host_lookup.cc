#include "lockprof/agent/pyroscope/host_lookup.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/record/own_thread.h"

namespace lockprof::agent {

namespace {

using Clock = std::chrono::steady_clock;

// How often a wait looks at `cancelled`.
constexpr auto kPoll = std::chrono::milliseconds(20);

// One lookup, shared by the thread that runs it and the caller, which may
// give up on it first.
struct Lookup {
  std::mutex mu;
  std::condition_variable answered;
  bool done = false;  // Guarded by mu, as are the results.
  HostAddresses found;
};

// Lookups whose thread still runs: the caller's, and those given up on.
std::atomic<int> running{0};

// A fork()ed child has none of the parent's lookup threads.
[[maybe_unused]] const bool g_fork_handler = (OnForkChild([] { running.store(0); }), true);

bool IsNumeric(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// getaddrinfo(), as cpp-httplib asks it (any family, TCP), on this thread.
HostAddresses Resolve(const std::string& host, const std::string& what) {
  HostAddresses out;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const int e = getaddrinfo(host.c_str(), nullptr, &hints, &list);
  for (const addrinfo* a = e == 0 ? list : nullptr; a != nullptr; a = a->ai_next) {
    char text[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) ==
            0 &&
        std::find(out.numeric.begin(), out.numeric.end(), text) == out.numeric.end()) {
      out.numeric.emplace_back(text);
    }
  }
  if (list != nullptr) freeaddrinfo(list);
  if (out.numeric.empty()) out.error = what + (e == 0 ? "no address" : gai_strerror(e));
  return out;
}

}  // namespace

HostAddresses FindHostAddresses(const std::string& host, Clock::time_point deadline,
                                const std::function<bool()>& cancelled) {
  HostAddresses out;
  if (IsNumeric(host)) {
    out.numeric.push_back(host);
    return out;
  }
  const std::string what = "looking up " + host + ": ";
  if (running.fetch_add(1) >= kMaxUnanswered) {
    running.fetch_sub(1);
    out.error = what + "earlier lookups still have no answer";
    return out;
  }
  auto lookup = std::make_shared<Lookup>();
  try {
    // A thread of lockprof's own (not glibc's getaddrinfo_a(), whose thread
    // the sanitizers do not see start), left to finish if the caller gives
    // up: getaddrinfo() cannot be interrupted.
    StartOwnThread([lookup, host, what] {
      HostAddresses found = Resolve(host, what);
      {
        std::lock_guard<std::mutex> l(lookup->mu);
        lookup->found = std::move(found);
        lookup->done = true;
      }
      lookup->answered.notify_all();
      running.fetch_sub(1);
    }).detach();
  } catch (const std::system_error& e) {
    running.fetch_sub(1);
    out.error = what + e.what();
    return out;
  }
  std::unique_lock<std::mutex> l(lookup->mu);
  while (!lookup->done) {
    const auto now = Clock::now();
    const bool stop = cancelled();
    if (stop || now >= deadline) {
      out.error = what + (stop ? "aborted" : "no answer in time");
      return out;
    }
    lookup->answered.wait_for(l, std::min<Clock::duration>(deadline - now, kPoll));
  }
  return lookup->found;
}

}  // namespace lockprof::agent
