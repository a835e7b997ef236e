// The cost of lockprof's recording path and of building a profile.
//
//  * event/...: one sampled event end to end, at fraction 1 (every event
//    kept): RecordContention as Mutex::UnlockSlow calls it (stack capture,
//    hashing, aggregation into the global mutex table, always the same key),
//    and its parts: a stack capture alone, and a table update for a key
//    already present among 3000 distinct ones, for a new key, and for a key
//    that finds the table full (folded into the overflow entry).
//  * profile/...: building the gzipped pprof of a table holding 10 000
//    distinct stacks, as /debug/pprof/mutex does (snapshot, merge,
//    symbolize, encode, gzip), in total and stage by stage. Symbols are
//    cached after the first build, so these are warm figures; scrape_pause
//    reports the first (cold) build.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "absl/base/attributes.h"
#include "bench_util.h"
#include "lockprof/agent/pprof/pprof_encoder.h"
#include "lockprof/agent/pprof/resolved_profile.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/tables/profile_tables.h"
#include "synthetic_stacks.h"

namespace {

namespace agent = lockprof::agent;

constexpr int kProfileStacks = 10000;
constexpr int kStackDepth = 16;

// Stands for a user function whose unlock was contended: the recorded stack
// starts at its caller, as for Mutex::UnlockSlow.
ABSL_ATTRIBUTE_NOINLINE void ContendedUnlock() {
  agent::RecordContention(1000, agent::EventTags{"bench"}, __builtin_frame_address(0));
  asm volatile("");
}

// Runs f() `depth` frames below the caller, so that stacks captured inside
// are as deep as a service's (the benchmark library itself has no frame
// pointers: a walk from its frames ends at once).
template <typename F>
ABSL_ATTRIBUTE_NOINLINE void AtDepth(int depth, const F& f) {
  if (depth <= 0) {
    f();
  } else {
    AtDepth(depth - 1, f);
  }
  asm volatile("");  // Not a tail call: every level keeps its frame.
}

void BM_RecordContention(benchmark::State& state) {
  bench::ApplyProfiling(bench::kAll);
  AtDepth(kStackDepth, [&] {
    for (auto _ : state) ContendedUnlock();
  });
  bench::ApplyProfiling(bench::kDefault);
}
BENCHMARK(BM_RecordContention)->Name("event/record_contention");

ABSL_ATTRIBUTE_NOINLINE void Capture(agent::StackTrace* stack) {
  agent::CaptureStack(__builtin_frame_address(0), stack);
  asm volatile("");
}

void BM_CaptureStack(benchmark::State& state) {
  agent::StackTrace stack;
  AtDepth(kStackDepth, [&] {
    for (auto _ : state) {
      Capture(&stack);
      benchmark::DoNotOptimize(stack);
    }
  });
  state.counters["depth"] = stack.depth;
}
BENCHMARK(BM_CaptureStack)->Name("event/capture_stack");

// Updates of keys already in a table of 3000 distinct keys, in turn.
void BM_TableHit(benchmark::State& state) {
  auto table = std::make_unique<agent::StackTable>(4096);
  constexpr int kKeys = 3000;
  bench::AddSyntheticStacks(*table, 0, kKeys, kStackDepth);
  std::vector<agent::StackTrace> stacks(kKeys);
  for (int i = 0; i < kKeys; ++i) bench::SyntheticStack(uint64_t(i), kStackDepth, &stacks[i]);
  int i = 0;
  for (auto _ : state) {
    table->Add(stacks[i], agent::EventTags{}, nullptr, 1, 1000);
    if (++i == kKeys) i = 0;
  }
  state.counters["dropped"] = double(table->dropped());
}
BENCHMARK(BM_TableHit)->Name("event/table_add_existing_key");

// Insertions of new keys (the table is replaced, untimed, before it fills).
void BM_TableInsert(benchmark::State& state) {
  constexpr int kCapacity = 1 << 16;
  constexpr int kPerTable = kCapacity / 2;
  std::unique_ptr<agent::StackTable> table;
  agent::StackTrace stack;
  int n = kPerTable;
  for (auto _ : state) {
    if (n == kPerTable) {
      state.PauseTiming();
      table = std::make_unique<agent::StackTable>(kCapacity);
      n = 0;
      state.ResumeTiming();
    }
    bench::SyntheticStack(uint64_t(n), kStackDepth, &stack);
    table->Add(stack, agent::EventTags{}, nullptr, 1, 1000);
    ++n;
  }
}
BENCHMARK(BM_TableInsert)->Name("event/table_add_new_key");

// New keys arriving at a full table go to the overflow entry.
void BM_TableFull(benchmark::State& state) {
  constexpr int kCapacity = 4096;
  auto table = std::make_unique<agent::StackTable>(kCapacity);
  bench::AddSyntheticStacks(*table, 0, kCapacity, kStackDepth);  // Fills it.
  agent::StackTrace stack;
  uint64_t n = kCapacity;
  for (auto _ : state) {
    bench::SyntheticStack(n++, kStackDepth, &stack);
    table->Add(stack, agent::EventTags{}, nullptr, 1, 1000);
  }
  state.counters["size"] = double(table->size());
}
BENCHMARK(BM_TableFull)->Name("event/table_add_when_full");

// A table holding kProfileStacks distinct stacks, as the mutex profile's.
const agent::StackTable& ProfileTable() {
  static const agent::StackTable* table = [] {
    auto* t = new agent::StackTable(2 * kProfileStacks);
    bench::AddSyntheticStacks(*t, 0, kProfileStacks, kStackDepth);
    return t;
  }();
  return *table;
}

enum Stage { kSnapshot, kResolve, kEncode, kGzip, kAllStages };

void BM_BuildProfile(benchmark::State& state) {
  const agent::StackTable& table = ProfileTable();
  const agent::ProfileInfo& info = agent::ProfileInfoFor(agent::ProfileId::kMutex);
  const auto stage = Stage(state.range(0));
  // Inputs of each stage, built once outside the loop.
  std::vector<agent::SlotValues> slots;
  table.Snapshot(&slots);
  agent::ResolvedProfile resolved = agent::Resolve(info, slots, agent::WallNanos(), 0);
  std::string encoded = agent::EncodePprof(resolved);
  size_t bytes = 0;
  for (auto _ : state) {
    switch (stage) {
      case kSnapshot: {
        std::vector<agent::SlotValues> s;
        table.Snapshot(&s);
        bytes = s.size();
        break;
      }
      case kResolve:
        bytes = agent::Resolve(info, slots, agent::WallNanos(), 0).samples.size();
        break;
      case kEncode:
        bytes = agent::EncodePprof(resolved).size();
        break;
      case kGzip:
        bytes = agent::Gzip(encoded).size();
        break;
      case kAllStages: {
        std::vector<agent::SlotValues> s;
        table.Snapshot(&s);
        bytes =
            agent::Gzip(agent::EncodePprof(agent::Resolve(info, s, agent::WallNanos(), 0))).size();
        break;
      }
    }
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["samples"] = double(resolved.samples.size());
  state.counters["out_size"] = double(bytes);
}
BENCHMARK(BM_BuildProfile)
    ->Name("profile/10k_stacks")
    ->ArgName("stage")
    ->Arg(kAllStages)
    ->Arg(kSnapshot)
    ->Arg(kResolve)
    ->Arg(kEncode)
    ->Arg(kGzip)
    ->Unit(benchmark::kMillisecond);

}  // namespace
