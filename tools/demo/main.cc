// lockprof-demo: a cache under contention, profiled by lockprof.
//
//   lockprof-demo [--addr=127.0.0.1:6060] [--duration=SECONDS] [--fixed]
//                 [--readers=N] [--writers=N] [--slow-ms=MS] [--lock-order-bug]
//
// --lock-order-bug adds a lock-order inversion that never deadlocks (see
// cache.h), for LOCKPROF_LOCK_ORDER=report to find.
//
// With LOCKPROF_PYROSCOPE_URL (and LOCKPROF_PYROSCOPE_APP, ...: see
// lockprof/agent/uploader.h) set, it also uploads its profiles to Pyroscope.
//
// Runs until interrupted (or for --duration seconds), serving the admin
// endpoint. Compare the profile with and without --fixed:
//   go tool pprof -top -base before.pb.gz after.pb.gz
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "lockprof/agent/base/parse.h"
#include "lockprof/lockprof.h"
#include "lockprof/tools/demo/cache.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct Flags {
  std::string addr = "127.0.0.1:6060";
  int64_t duration_s = 0;  // 0: until interrupted.
  bool fixed = false;
  bool lock_order_bug = false;
  int64_t readers = 16;
  int64_t writers = 4;
  int64_t slow_ms = 10;
};

// Exits: with status 2 and the usage on stderr after a bad flag, or with 0
// and the usage on stdout for --help (`error` is then the description).
[[noreturn]] void Usage(const char* error, bool help = false) {
  std::fprintf(help ? stdout : stderr,
               "lockprof-demo: %s\nusage: lockprof-demo [--addr=HOST:PORT] [--duration=SECONDS] "
               "[--fixed] [--readers=N] [--writers=N] [--slow-ms=MS] [--lock-order-bug]\n",
               error);
  std::exit(help ? 0 : 2);
}

bool IntFlag(const char* arg, const char* name, int64_t min, int64_t max, int64_t* out) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  auto v = lockprof::agent::ParseInt(arg + n + 1, min, max);
  if (!v) Usage((std::string("bad value for ") + name).c_str());
  *out = *v;
  return true;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strcmp(a, "--help") == 0 || std::strcmp(a, "-h") == 0) {
      Usage("a cache under contention, profiled by lockprof", /*help=*/true);
    } else if (std::strncmp(a, "--addr=", 7) == 0) {
      f.addr = a + 7;
    } else if (std::strcmp(a, "--fixed") == 0) {
      f.fixed = true;
    } else if (std::strcmp(a, "--lock-order-bug") == 0) {
      f.lock_order_bug = true;
    } else if (!IntFlag(a, "--duration", 0, 1 << 30, &f.duration_s) &&
               !IntFlag(a, "--readers", 0, 4096, &f.readers) &&
               !IntFlag(a, "--writers", 0, 4096, &f.writers) &&
               !IntFlag(a, "--slow-ms", 0, 60000, &f.slow_ms)) {
      Usage((std::string("unknown flag ") + a).c_str());
    }
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  lockprof::AdminServerOptions opts;
  std::string error;
  if (!lockprof::agent::ParseHostPort(flags.addr, &opts.address, &opts.port, &error)) {
    Usage(("--addr: " + error).c_str());
  }
  if (absl::Status st = lockprof::StartAdminServer(opts); !st.ok()) {
    std::fprintf(stderr, "lockprof-demo: %s\n", st.ToString().c_str());
    return 1;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  // LOCKPROF_ADMIN_ADDR, if set, wins over --addr: print what is served.
  const std::string base = "http://" + lockprof::AdminServerAddress();
  std::printf(
      "lockprof-demo: %lld readers, %lld writers, %lld ms update %s the lock%s\n"
      "admin endpoint: %s/debug/pprof/\n\ntry:\n"
      "  curl -o mutex.pb.gz %s/debug/pprof/mutex\n"
      "  go tool pprof -top mutex.pb.gz\n"
      "  go tool pprof -top -sample_index=delay %s/debug/pprof/mutex\n"
      "  go tool pprof -top %s/debug/pprof/block\n"
      "  curl '%s/debug/pprof/mutex?debug=1'\n"
      "  %s/debug/lockprof/   (in a browser: top locks and flame graphs)\n",
      (long long)flags.readers, (long long)flags.writers, (long long)flags.slow_ms,
      flags.fixed ? "outside" : "inside", flags.duration_s ? "" : " (Ctrl-C stops)", base.c_str(),
      base.c_str(), base.c_str(), base.c_str(), base.c_str(), base.c_str());
  if (lockprof::UploaderRunning()) {
    std::printf("uploading profiles to %s\n", std::getenv("LOCKPROF_PYROSCOPE_URL"));
  }
  std::fflush(stdout);

  demo::Cache cache(std::chrono::milliseconds(flags.slow_ms), flags.fixed, flags.lock_order_bug);
  // Before any Set(): one order now, the other later, never at once.
  if (flags.lock_order_bug) std::printf("cache stats at start: %lld\n", (long long)cache.Stats());
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int64_t i = 0; i < flags.readers; ++i) {
    threads.emplace_back([&, i] {
      std::string key = "key-" + std::to_string(i % 10);
      while (!stop.load(std::memory_order_relaxed)) cache.Get(key);
    });
  }
  for (int64_t i = 0; i < flags.writers; ++i) {
    threads.emplace_back([&, i] {
      std::string key = "key-" + std::to_string(i);
      while (!stop.load(std::memory_order_relaxed)) cache.Set(key, "value");
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(flags.duration_s);
  while (!g_stop && (flags.duration_s == 0 || std::chrono::steady_clock::now() < deadline)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop = true;
  for (auto& t : threads) t.join();
  lockprof::StopUploader();  // Sends the last interval.
  lockprof::StopAdminServer();
  return 0;
}
