// stack_memory: lockprof's memory under an adversarial workload, one million
// distinct call stacks contending on one lock.
//
// Threads take a shared lockprof::Mutex from 16^5 = 1 048 576 distinct call
// paths (five levels of sixteen distinct functions, chosen by the digits of
// a path number), hold it ~3 µs and release it, with every profiling rate at
// 1: every acquisition is a hold sample at its own stack, and every wait
// that sleeps becomes a block and a mutex sample. Before and after the flood
// one fixed "marker" call path takes another lock kMarkerOps times; with
// every rate at 1 its hold count is exact, so the tool can check that
// nothing recorded before the tables filled was lost.
//
// Prints the process's RSS before and after, and per profile: keys stored,
// events folded into the overflow entry ("dropped"), the table's bytes,
// whether the overflow frame is named in the profile, and the marker check.
// The cap is LOCKPROF_MAX_STACKS (default 4096 keys per profile).
//
// Usage: stack_memory [--threads N] [--paths N]
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "bench_util.h"
#include "lockprof/agent/tables/profile_tables.h"
#include "lockprof/lockprof.h"

namespace {

constexpr int kLevels = 5;
constexpr int kFanout = 16;
constexpr int kMarkerOps = 1000;
constexpr int kHoldMicros = 3;
constexpr char kMarkerLock[] = "marker";

lockprof::Mutex g_flood_mu{"flood"};
lockprof::Mutex g_marker_mu{kMarkerLock};
volatile int g_sink;

ABSL_ATTRIBUTE_NOINLINE void Leaf() {
  std::lock_guard<lockprof::Mutex> lock(g_flood_mu);
  // A little time inside, so that the other threads find the lock held and sleep.
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kHoldMicros);
  while (std::chrono::steady_clock::now() < until) {
  }
}

using LevelFn = void (*)(uint32_t path, int level);
template <int K>
void Level(uint32_t path, int level);

template <size_t... K>
constexpr std::array<LevelFn, sizeof...(K)> MakeLevels(std::index_sequence<K...>) {
  return {&Level<int(K)>...};
}
const std::array<LevelFn, kFanout> kLevelFns = MakeLevels(std::make_index_sequence<kFanout>{});

// Level<K> calls the function the next digit of `path` names: the call
// stack spells the path. Distinct bodies keep the linker from folding them.
template <int K>
ABSL_ATTRIBUTE_NOINLINE void Level(uint32_t path, int level) {
  g_sink = K;
  if (level == 0) {
    Leaf();
  } else {
    kLevelFns[(path >> (4 * (level - 1))) % kFanout](path, level - 1);
  }
  asm volatile("");  // Not a tail call: each level keeps its frame.
}

void RunPath(uint32_t path) {
  kLevelFns[(path >> (4 * (kLevels - 1))) % kFanout](path, kLevels - 1);
}

ABSL_ATTRIBUTE_NOINLINE void Marker() {
  for (int i = 0; i < kMarkerOps; ++i) {
    g_marker_mu.lock();
    g_marker_mu.unlock();
  }
}

double RssMiB() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f != nullptr) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

// Hold count recorded for the marker lock (exact at hold rate 1).
int64_t MarkerHolds() {
  std::vector<lockprof::agent::SlotValues> slots;
  lockprof::agent::ProfileTable(lockprof::agent::ProfileId::kHold).Snapshot(&slots);
  int64_t n = 0;
  for (const auto& s : slots) {
    // The table keeps its own copy of the name: compare the text.
    if (!s.overflow && s.key->lock != nullptr && std::strcmp(s.key->lock, kMarkerLock) == 0) {
      n += s.values[0];
    }
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2 * std::max(2, int(std::thread::hardware_concurrency()));
  uint32_t paths = 1u << (4 * kLevels);
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--paths")) paths = uint32_t(std::atol(argv[i + 1]));
  }
  bench::ApplyProfiling(bench::kAll);
  const double rss_start = RssMiB();
  double rss_before = 0, seconds = 0;
  for (int round = 0; round < 2; ++round) {
    // A thread running Marker: the same stack both times.
    std::thread(Marker).join();
    if (round == 1) break;
    rss_before = RssMiB();
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([t, threads, paths] {
        for (uint32_t p = uint32_t(t); p < paths; p += uint32_t(threads)) RunPath(p);
      });
    }
    for (auto& t : pool) t.join();
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double rss_after = RssMiB();
  const int64_t marker = MarkerHolds();
  std::printf(
      "stack_memory paths=%u threads=%d seconds=%.1f rss_start_mib=%.1f "
      "rss_before_mib=%.1f rss_after_mib=%.1f marker_holds=%lld expected=%d %s\n",
      paths, threads, seconds, rss_start, rss_before, rss_after, (long long)marker, 2 * kMarkerOps,
      marker == 2 * kMarkerOps ? "OK" : "LOST");
  for (const char* name : {"mutex", "block", "hold"}) {
    const auto& table = lockprof::agent::ProfileTable(lockprof::agent::FindProfile(name)->id);
    std::ostringstream text;
    (void)lockprof::WriteProfile(name, 1, text);
    const bool named = text.str().find("lockprof.LostSamplesStackTableFull") != std::string::npos;
    std::printf(
        "stack_memory profile=%s keys=%zu slots=%zu dropped_events=%llu table_mib=%.2f "
        "overflow_frame_in_profile=%d\n",
        name, table.size(), table.slot_count(), (unsigned long long)table.dropped(),
        double(table.memory_bytes()) / (1 << 20), int(named));
  }
  return marker == 2 * kMarkerOps ? 0 : 1;
}
