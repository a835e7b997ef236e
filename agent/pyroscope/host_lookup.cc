#include "lockprof/agent/pyroscope/host_lookup.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <mutex>

namespace lockprof::agent {

namespace {

using Clock = std::chrono::steady_clock;

// How often a wait looks at `cancelled`.
constexpr auto kPoll = std::chrono::milliseconds(20);

// One getaddrinfo_a() request: glibc's thread writes into `cb` until the
// request is done, so all of it must outlive the request.
struct Request {
  std::string name;
  addrinfo hints{};
  gaicb cb{};
};

std::mutex unanswered_mu;
// Requests given up on and not yet answered.
std::vector<Request*>* const unanswered = new std::vector<Request*>;  // Guarded by unanswered_mu.

void Free(Request* r) {
  if (r->cb.ar_result != nullptr) freeaddrinfo(r->cb.ar_result);
  delete r;
}

// Frees the requests given up on that have been answered since; returns how
// many still wait for an answer.
size_t ReapUnanswered() {
  std::lock_guard<std::mutex> l(unanswered_mu);
  auto answered = [](Request* r) {
    if (gai_error(&r->cb) == EAI_INPROGRESS) return false;
    Free(r);
    return true;
  };
  unanswered->erase(std::remove_if(unanswered->begin(), unanswered->end(), answered),
                    unanswered->end());
  return unanswered->size();
}

void LeaveUnanswered(Request* r) {
  std::lock_guard<std::mutex> l(unanswered_mu);
  unanswered->push_back(r);
}

bool IsNumeric(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::vector<std::string> NumericAddresses(const addrinfo* list) {
  std::vector<std::string> out;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    char text[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) ==
            0 &&
        std::find(out.begin(), out.end(), text) == out.end()) {
      out.emplace_back(text);
    }
  }
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
  if (ReapUnanswered() >= size_t{kMaxUnanswered}) {
    out.error = what + "earlier lookups still have no answer";
    return out;
  }
  auto r = std::make_unique<Request>();
  r->name = host;
  // As cpp-httplib asks (any family, TCP).
  r->hints.ai_family = AF_UNSPEC;
  r->hints.ai_socktype = SOCK_STREAM;
  r->cb.ar_name = r->name.c_str();
  r->cb.ar_request = &r->hints;
  gaicb* list[] = {&r->cb};
  if (const int e = getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr); e != 0) {
    out.error = what + gai_strerror(e);
    return out;
  }
  int e;
  while ((e = gai_error(&r->cb)) == EAI_INPROGRESS) {
    const auto now = Clock::now();
    const bool stop = cancelled();
    if (stop || now >= deadline) {
      const int c = gai_cancel(&r->cb);
      if (c == EAI_ALLDONE) continue;  // Answered meanwhile.
      if (c != EAI_CANCELED) LeaveUnanswered(r.release());
      out.error = what + (stop ? "aborted" : "no answer in time");
      return out;
    }
    const auto slice = std::min<Clock::duration>(deadline - now, kPoll);
    const timespec ts{0, long(std::chrono::duration_cast<std::chrono::nanoseconds>(slice).count())};
    const gaicb* wait[] = {&r->cb};
    gai_suspend(wait, 1, &ts);
  }
  if (e == 0) out.numeric = NumericAddresses(r->cb.ar_result);
  if (out.numeric.empty()) out.error = what + (e == 0 ? "no address" : gai_strerror(e));
  Free(r.release());
  return out;
}

}  // namespace lockprof::agent
