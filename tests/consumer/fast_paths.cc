// Runs the inline fast paths of every public lockprof header once, with every
// sampler on, so that they are compiled into this program: linked against
// liblockprof.so, each symbol they reach must be exported (the library hides
// everything else). Returns false if something does not add up.
#include <lockprof/lockprof.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <string>
#include <thread>

bool RunFastPaths() {
  lockprof::SetHoldProfileRate(1);
  lockprof::SetBlockProfileRate(1);
  lockprof::SetSlowAcquireHook(std::chrono::hours(1), [](const lockprof::SlowAcquire&) {});
  lockprof::ScopedLabels labels({{"consumer", "fast_paths"}});

  lockprof::Mutex mu{"consumer.mutex"};
  { lockprof::MutexLock lock(&mu); }
  if (mu.try_lock()) mu.unlock();

  lockprof::SharedMutex rw{"consumer.shared"};
  { std::unique_lock<lockprof::SharedMutex> lock(rw); }
  { std::shared_lock<lockprof::SharedMutex> lock(rw); }
  if (rw.try_lock_shared()) rw.unlock_shared();

  lockprof::CondVar cv;
  bool ready = false;
  std::thread notifier([&] {
    std::lock_guard<lockprof::Mutex> lock(mu);
    ready = true;
    cv.notify_all();
  });
  {
    std::unique_lock<lockprof::Mutex> lock(mu);
    cv.wait(lock, [&] { return ready; });
    cv.wait_for(lock, std::chrono::milliseconds(1));
    cv.notify_one();
  }
  notifier.join();

  lockprof::Atomic<int64_t> counter{"consumer.atomic", 0};
  counter.Update([](int64_t v) { return v + 1; });
  counter.fetch_add(1);
  ++counter;
  lockprof::ShardedCounter sharded("consumer.sharded");
  sharded.Add(2);

  lockprof::ShardedMap<std::string, int> map("consumer.map");
  map.Set("a", 1);
  const bool map_ok = map.Get("a") == 1 && map.Contains("a") && map.size() == 1;

  lockprof::CowPtr<std::string> cow("consumer.cow", "a");
  cow.Update([](const std::string& s) { return s + "b"; });

  lockprof::DeltaProfiler delta("mutex");
  std::ostringstream delta_out;
  std::string metrics;
  lockprof::WriteMetrics(&metrics);
  return ready && counter.load() == 3 && sharded.Load() == 2 && map_ok && *cow.Load() == "ab" &&
         delta.WriteTo(delta_out).ok() && !metrics.empty() && !lockprof::ProfileNames().empty();
}
