#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {

// Sample types: mutex and block exactly as Go writes them, so that
// `go tool pprof -contentions/-total_delay/-mean_delay` work. Hold and cas
// are lockprof's own, named in the same style.
constexpr ProfileInfo kProfiles[kProfileCount] = {
    {ProfileId::kMutex,
     "mutex",
     "Stack traces of holders of contended mutexes, charged with the time others waited",
     {{"contentions", "count"}, {"delay", "nanoseconds"}},
     "--- mutex:",
     true},
    {ProfileId::kBlock,
     "block",
     "Stack traces that led to blocking on lockprof primitives, charged to the waiter",
     {{"contentions", "count"}, {"delay", "nanoseconds"}},
     "--- contention:",
     false},
    {ProfileId::kHold,
     "hold",
     "Stack traces of critical sections, sampled, with how long the lock was held",
     {{"holds", "count"}, {"hold", "nanoseconds"}},
     "--- contention:",
     true},
    {ProfileId::kCas,
     "cas",
     "Stack traces of lockprof::Atomic compare-and-swap loops that retried",
     {{"retries", "count"}, {"delay", "nanoseconds"}},
     "--- contention:",
     false},
};

namespace {

// Constant-initialised, so usable from static initialisers of other files,
// and never destroyed, so usable from static destructors and from threads
// still running while the process exits.
static_assert(kProfileCount == 4, "one initialiser per profile below");

// Values go through per-thread cells: the tables live as long as the
// process (thread_cells.h).
union NeverDestroyed {
  constexpr NeverDestroyed()
      : tables{StackTable(StackTable::Values::kPerThreadCells),
               StackTable(StackTable::Values::kPerThreadCells),
               StackTable(StackTable::Values::kPerThreadCells),
               StackTable(StackTable::Values::kPerThreadCells)} {}
  ~NeverDestroyed() {}
  StackTable tables[kProfileCount];
};
NeverDestroyed g_storage;

}  // namespace

const ProfileInfo& ProfileInfoFor(ProfileId id) { return kProfiles[int(id)]; }

const ProfileInfo* FindProfile(std::string_view name) {
  for (const ProfileInfo& p : kProfiles) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

StackTable& ProfileTable(ProfileId id) { return g_storage.tables[int(id)]; }

}  // namespace lockprof::agent
