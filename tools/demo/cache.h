// The demo's cache: one map behind one lockprof::Mutex, as in the guide's
// worked profiling exercise. Set() does a slow update while holding the lock
// (the bug the profile should find) unless built with `fixed` = true, which
// moves the slow work out of the critical section.
#ifndef LOCKPROF_TOOLS_DEMO_CACHE_H_
#define LOCKPROF_TOOLS_DEMO_CACHE_H_

#include <chrono>
#include <string>
#include <unordered_map>

#include "lockprof/lockprof.h"

namespace demo {

class Cache {
 public:
  Cache(std::chrono::microseconds slow_update, bool fixed)
      : slow_update_(slow_update), fixed_(fixed) {}

  std::string Get(const std::string& key);
  void Set(const std::string& key, const std::string& value);

 private:
  // Stands for the expensive part of an update (validation, encoding, I/O).
  std::string SlowProcess(const std::string& value) const;

  const std::chrono::microseconds slow_update_;
  const bool fixed_;
  lockprof::Mutex mu_{"cache.main"};  // The name README's examples use.
  std::unordered_map<std::string, std::string> data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace demo

#endif  // LOCKPROF_TOOLS_DEMO_CACHE_H_
