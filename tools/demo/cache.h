// The demo's cache: one map behind one lockprof::Mutex, as in the guide's
// worked profiling exercise. Set() does a slow update while holding the lock
// (the bug the profile should find) unless built with `fixed` = true, which
// moves the slow work out of the critical section. With `lock_order_bug`,
// Set() also counts updates under a second lock, taken while holding the
// first, and Stats() takes the two the other way round: a lock-order
// inversion that lockprof's lock-order checking reports (README, "Finding
// deadlocks") although the demo calls Stats() only before Set() runs, so
// it never deadlocks.
#ifndef LOCKPROF_TOOLS_DEMO_CACHE_H_
#define LOCKPROF_TOOLS_DEMO_CACHE_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "lockprof/lockprof.h"

namespace demo {

class Cache {
 public:
  Cache(std::chrono::microseconds slow_update, bool fixed, bool lock_order_bug = false)
      : slow_update_(slow_update), fixed_(fixed), lock_order_bug_(lock_order_bug) {}

  std::string Get(const std::string& key);
  void Set(const std::string& key, const std::string& value);
  // Entries plus updates so far.
  int64_t Stats();

 private:
  // Stands for the expensive part of an update (validation, encoding, I/O).
  std::string SlowProcess(const std::string& value) const;

  const std::chrono::microseconds slow_update_;
  const bool fixed_;
  const bool lock_order_bug_;
  lockprof::Mutex mu_{"cache.main"};  // The name README's examples use.
  std::unordered_map<std::string, std::string> data_ ABSL_GUARDED_BY(mu_);
  lockprof::Mutex stats_mu_{"cache.stats"};
  int64_t updates_ ABSL_GUARDED_BY(stats_mu_) = 0;
};

}  // namespace demo

#endif  // LOCKPROF_TOOLS_DEMO_CACHE_H_
