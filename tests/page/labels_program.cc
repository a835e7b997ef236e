// What contention_page_pprof_test.py profiles: contention on locks whose
// names and labels the contention page must turn into go tool pprof flags
// that select what it shows: a lock without a name and one named "" (both
// "(unnamed)" to /metrics), a ShardedMap (numeric "shard" labels), and the
// unnamed lock and a named one taken under a label whose value is a long
// run of digits. Contends
// for `seconds` (argv[1]), then keeps serving the same cumulative profiles
// until killed, so that the page and pprof read the same values. Prints
// "admin endpoint: http://ADDR/" once serving on a port of its choosing.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"

namespace {

constexpr char kEmpty[] = "";
constexpr char kLabelled[] = "page.labelled";
constexpr char kSessions[] = "sessions";

lockprof::Mutex unnamed;
lockprof::Mutex empty{kEmpty};
lockprof::Mutex labelled{kLabelled};
lockprof::ShardedMap<int, int> sessions{kSessions, 4};
std::atomic<bool> stop{false};

void HoldWhile(lockprof::Mutex& mu) {
  while (!stop.load()) {
    mu.lock();
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    mu.unlock();
  }
}

}  // namespace

int main(int argc, char** argv) {
  lockprof::SetMutexProfileFraction(1);
  lockprof::SetBlockProfileRate(1);
  lockprof::AdminServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  if (!lockprof::StartAdminServer(options).ok()) return 1;
  std::printf("admin endpoint: http://%s/\n", lockprof::AdminServerAddress().c_str());
  std::fflush(stdout);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([] { HoldWhile(empty); });
    for (lockprof::Mutex* mu : {&unnamed, &labelled}) {
      threads.emplace_back([mu] {
        lockprof::ScopedLabels labels({{"req", "12345678901234567890"}});
        HoldWhile(*mu);
      });
    }
    threads.emplace_back([t] {
      for (int i = 0; !stop.load(); ++i) sessions.Set(i % 64 + t, i);  // Keys in every shard.
    });
  }
  // A reader that holds each shard a while: every shard's writers wait for
  // it in turn. (With the writers alone, on keys 0-8, a shard holding one
  // key, or none, had no contention in some runs, and its view was empty.)
  threads.emplace_back([] {
    while (!stop.load()) {
      sessions.ForEach([](const int&, const int&) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      });
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(argc > 1 ? std::atoi(argv[1]) : 2));
  stop = true;
  for (std::thread& t : threads) t.join();
  std::this_thread::sleep_for(std::chrono::seconds(300));
  return 0;
}
