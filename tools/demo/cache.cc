#include "lockprof/tools/demo/cache.h"

#include <thread>

namespace demo {

// Not inlined, so that profiles of the demo read like profiles of a real
// service: one frame per method.
ABSL_ATTRIBUTE_NOINLINE std::string Cache::Get(const std::string& key) {
  lockprof::MutexLock lock(&mu_);
  auto it = data_.find(key);
  return it == data_.end() ? std::string() : it->second;
}

ABSL_ATTRIBUTE_NOINLINE void Cache::Set(const std::string& key, const std::string& value) {
  if (fixed_) {
    std::string processed = SlowProcess(value);  // Outside the lock.
    lockprof::MutexLock lock(&mu_);
    data_[key] = std::move(processed);
    return;
  }
  lockprof::MutexLock lock(&mu_);
  data_[key] = SlowProcess(value);  // The bug: slow work inside the lock.
  if (lock_order_bug_) {
    lockprof::MutexLock stats(&stats_mu_);  // cache.main, then cache.stats.
    ++updates_;
  }
}

ABSL_ATTRIBUTE_NOINLINE int64_t Cache::Stats() {
  lockprof::MutexLock stats(&stats_mu_);  // cache.stats, then cache.main.
  lockprof::MutexLock lock(&mu_);
  return updates_ + int64_t(data_.size());
}

ABSL_ATTRIBUTE_NOINLINE std::string Cache::SlowProcess(const std::string& value) const {
  std::this_thread::sleep_for(slow_update_);
  return value;
}

}  // namespace demo
