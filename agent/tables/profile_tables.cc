#include "lockprof/agent/tables/profile_tables.h"

#include "lockprof/agent/record/sampler.h"

namespace lockprof::agent {

namespace {

// Sample types: mutex and block exactly as Go writes them, so that
// `go tool pprof -contentions/-total_delay/-mean_delay` work. Hold and cas
// are lockprof's own, named in the same style.
constexpr ProfileInfo kProfiles[kProfileCount] = {
    {ProfileId::kMutex,
     "mutex",
     "Stack traces of holders of contended mutexes",
     {{"contentions", "count"}, {"delay", "nanoseconds"}},
     "--- mutex:",
     true},
    {ProfileId::kBlock,
     "block",
     "Stack traces that led to blocking on synchronization primitives",
     {{"contentions", "count"}, {"delay", "nanoseconds"}},
     "--- contention:",
     false},
    {ProfileId::kHold,
     "hold",
     "Stack traces of critical sections, sampled by hold time",
     {{"holds", "count"}, {"hold", "nanoseconds"}},
     "--- hold:",
     true},
    {ProfileId::kCas,
     "cas",
     "Stack traces of compare-and-swap loops that retried",
     {{"retries", "count"}, {"delay", "nanoseconds"}},
     "--- cas:",
     false},
};

// Constant-initialised, so usable from static initialisers of other files,
// and never destroyed, so usable from static destructors and from threads
// still running while the process exits.
union NeverDestroyed {
  constexpr NeverDestroyed() : tables() {}
  ~NeverDestroyed() {}
  StackTable tables[kProfileCount];
};
NeverDestroyed g_storage;

}  // namespace

const ProfileInfo& Info(ProfileId id) { return kProfiles[int(id)]; }

const ProfileInfo* FindProfile(std::string_view name) {
  for (const ProfileInfo& p : kProfiles) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

StackTable& Table(ProfileId id) { return g_storage.tables[int(id)]; }

int64_t CurrentPeriod(ProfileId id) {
  switch (id) {
    case ProfileId::kMutex:
    case ProfileId::kCas:
      return g_rates.mutex_fraction.load(std::memory_order_relaxed);
    case ProfileId::kHold:
      return g_rates.hold_rate.load(std::memory_order_relaxed);
    default:
      return 1;
  }
}

}  // namespace lockprof::agent
