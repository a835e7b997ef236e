// scrape_pause: does scraping /debug/pprof/mutex make application threads
// wait?
//
// Application threads lock and unlock their own lockprof::Mutex in a loop
// with every profiling rate at 1, so each operation also records a hold
// sample (stack capture and table update), and time every operation. The
// mutex profile is pre-filled with 10 000 distinct stacks. Three phases of
// equal length: "baseline" (nobody scrapes), "busy" (a control: a thread
// that has nothing to do with lockprof allocates, fills and frees 8 MiB
// buffers, loading the machine as a profile build does) and "scraping" (a
// client fetches /debug/pprof/mutex and /debug/pprof/hold over HTTP from the
// admin server, back to back). A pause caused by the scrape shows as
// "scraping" above "busy"; one that "busy" has as often is the machine's.
//
// On a machine with few cores the scraper and the application compete for
// CPU, and the kernel's preemption alone can stall a thread for a time slice
// (milliseconds). Each thread therefore reads its context-switch counts
// every 256 operations, and pauses are also reported for the batches in
// which the thread was not switched out: those are the ones lockprof itself
// could have caused. (Hypervisor steal is invisible to both.)
//
// Usage: scrape_pause [--threads N] [--seconds S] [--stacks N]
// Defaults: hardware concurrency - 1 application threads (at least 1), 5 s
// per phase, 10000 stacks.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "lockprof/agent/tables/profile_tables.h"
#include "lockprof/lockprof.h"
#include "synthetic_stacks.h"

namespace {

struct ThreadResult {
  int64_t ops = 0;
  double max_ns = 0;
  double max_ns_unswitched = 0;  // In batches without a context switch.
  int64_t over_100us = 0;
  int64_t over_100us_unswitched = 0;
};

long ContextSwitches() {
  rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

void AppThread(const std::atomic<bool>* stop, ThreadResult* out) {
  lockprof::Mutex mu;
  const double ns_per_tick = bench::NanosPerTick();
  constexpr int kBatch = 256;
  while (!stop->load(std::memory_order_relaxed)) {
    const long switches = ContextSwitches();
    double batch_max = 0;
    int64_t batch_over = 0;
    for (int i = 0; i < kBatch; ++i) {
      const uint64_t t0 = bench::Ticks();
      mu.lock();
      mu.unlock();
      const double ns = double(bench::Ticks() - t0) * ns_per_tick;
      batch_max = std::max(batch_max, ns);
      batch_over += ns > 100e3;
    }
    out->ops += kBatch;
    out->max_ns = std::max(out->max_ns, batch_max);
    out->over_100us += batch_over;
    if (ContextSwitches() == switches) {
      out->max_ns_unswitched = std::max(out->max_ns_unswitched, batch_max);
      out->over_100us_unswitched += batch_over;
    }
  }
}

// GET http://127.0.0.1:port/path; returns the body size, or -1 unless the
// answer was 200.
int64_t HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (write(fd, request.data(), request.size()) != ssize_t(request.size())) {
    close(fd);
    return -1;
  }
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) response.append(buf, size_t(n));
  close(fd);
  if (response.compare(0, 12, "HTTP/1.1 200") != 0) return -1;
  size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? -1 : int64_t(response.size() - body - 4);
}

// The control phase's load: a second busy core, multi-MiB allocations that
// malloc maps and returns to the kernel (as a profile build's do), memory
// traffic — everything a scrape does to the machine, without lockprof.
void Burner(const std::atomic<bool>* stop) {
  uint64_t sink = 0;
  while (!stop->load(std::memory_order_relaxed)) {
    std::vector<uint64_t> buffer(size_t{1} << 20);
    for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = i * 0x9E3779B97F4A7C15ull;
    for (uint64_t x : buffer) sink += x;
  }
  asm volatile("" : : "r"(sink));
}

struct ScrapeResult {
  std::vector<double> mutex_ms;  // Each /debug/pprof/mutex fetch.
  int64_t failures = 0;
  int64_t bytes = 0;
};

void Scraper(int port, const std::atomic<bool>* stop, ScrapeResult* out) {
  while (!stop->load(std::memory_order_relaxed)) {
    const uint64_t t0 = bench::Ticks();
    const int64_t bytes = HttpGet(port, "/debug/pprof/mutex");
    out->mutex_ms.push_back(double(bench::Ticks() - t0) * bench::NanosPerTick() / 1e6);
    out->failures += bytes < 0 || HttpGet(port, "/debug/pprof/hold") < 0;
    out->bytes = bytes;
  }
}

// port != 0: scrape that admin server; burn: run Burner instead.
void RunPhase(const char* name, int threads, double seconds, int port, bool burn = false) {
  std::atomic<bool> stop{false};
  std::vector<ThreadResult> results(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(AppThread, &stop, &results[size_t(t)]);
  ScrapeResult scrapes;
  std::thread scraper;
  if (port != 0) scraper = std::thread(Scraper, port, &stop, &scrapes);
  if (burn) scraper = std::thread(Burner, &stop);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : pool) t.join();
  if (scraper.joinable()) scraper.join();
  ThreadResult all;
  for (const ThreadResult& r : results) {
    all.ops += r.ops;
    all.max_ns = std::max(all.max_ns, r.max_ns);
    all.max_ns_unswitched = std::max(all.max_ns_unswitched, r.max_ns_unswitched);
    all.over_100us += r.over_100us;
    all.over_100us_unswitched += r.over_100us_unswitched;
  }
  std::printf(
      "scrape_pause phase=%s threads=%d ops=%lld max_us=%.1f max_us_unswitched=%.1f "
      "over_100us=%lld over_100us_unswitched=%lld",
      name, threads, (long long)all.ops, all.max_ns / 1e3, all.max_ns_unswitched / 1e3,
      (long long)all.over_100us, (long long)all.over_100us_unswitched);
  if (port != 0) {
    std::vector<double> ms = scrapes.mutex_ms;
    std::sort(ms.begin(), ms.end());
    std::printf(
        " scrapes=%zu failures=%lld first_scrape_ms=%.2f median_scrape_ms=%.2f "
        "max_scrape_ms=%.2f profile_bytes=%lld",
        ms.size(), (long long)scrapes.failures,
        scrapes.mutex_ms.empty() ? 0.0 : scrapes.mutex_ms[0], ms.empty() ? 0.0 : ms[ms.size() / 2],
        ms.empty() ? 0.0 : ms.back(), (long long)scrapes.bytes);
  }
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = std::max(1, int(std::thread::hardware_concurrency()) - 1);
  double seconds = 5;
  int stacks = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--stacks")) stacks = std::atoi(argv[i + 1]);
  }
  // Room for the synthetic stacks (read when the table is first used).
  setenv("LOCKPROF_MAX_STACKS", std::to_string(2 * stacks + 1024).c_str(), 0);
  bench::AddSyntheticStacks(lockprof::agent::ProfileTable(lockprof::agent::ProfileId::kMutex), 0,
                            stacks, 16);
  bench::ApplyProfiling(bench::kAll);
  if (auto status = lockprof::StartAdminServer({"127.0.0.1", 0}); !status.ok()) {
    std::fprintf(stderr, "scrape_pause: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("scrape_pause stacks=%lld\n", (long long)lockprof::ProfileSampleCount("mutex"));
  RunPhase("baseline", threads, seconds, 0);
  RunPhase("busy", threads, seconds, 0, /*burn=*/true);
  RunPhase("scraping", threads, seconds, lockprof::AdminServerPort());
  lockprof::StopAdminServer();
  return 0;
}
