// A request counted, for its lifetime, against a limit on how many such
// requests run at once: the ?seconds= windows (each holds a server thread
// for its length), the symbol answers (each holds up to kMaxSymbolAnswer
// bytes). A request that finds no room is not counted, and is answered 503.
#ifndef LOCKPROF_SERVER_HANDLERS_IN_FLIGHT_H_
#define LOCKPROF_SERVER_HANDLERS_IN_FLIGHT_H_

#include <atomic>

namespace lockprof::server {

class InFlight {
 public:
  // Counts this request in `count` if fewer than `max` were. max <= 0: no
  // limit, and not counted (a host's own server, whose windows must not
  // take room from the built-in server's).
  InFlight(std::atomic<int>& count, int max)
      : count_(count),
        counted_(max > 0),
        admitted_(!counted_ || count.fetch_add(1, std::memory_order_relaxed) < max) {
    if (!admitted_) count_.fetch_sub(1, std::memory_order_relaxed);
  }
  ~InFlight() {
    if (counted_ && admitted_) count_.fetch_sub(1, std::memory_order_relaxed);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

  bool admitted() const { return admitted_; }

 private:
  std::atomic<int>& count_;
  const bool counted_;
  const bool admitted_;
};

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_IN_FLIGHT_H_
