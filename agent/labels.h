// User labels: lockprof's equivalent of Go's pprof.Do / SetGoroutineLabels.
//
//   {
//     lockprof::ScopedLabels labels({{"endpoint", "/api/cart"}});
//     HandleCart();   // every sample recorded on this thread in here
//   }                 // carries endpoint="/api/cart"
//
// Labels nest: an inner scope adds to (and may override keys of) the outer
// one.
//
// Cost, and why it suits per-request use: a scope's labels (with the set it
// nests in) are interned the first time they are seen, which takes a lock
// and allocates. Every later scope with the same labels in the same
// enclosing set finds its set with a hash of the strings and a lock-free
// probe of a fixed table: no lock, no allocation, no write to shared memory,
// so scopes on many threads at once do not slow each other down
// (BENCHMARKS.md: 66-83 CPU ns per 2-label scope, constructed and
// destroyed, on a 2-vCPU guest). Recording then only copies a pointer.
//
// Memory is capped: at most LOCKPROF_MAX_LABEL_SETS (default 4096) distinct
// scopes are interned, for the life of the process, holding at most 16 MiB
// plus 256 bytes per set of the cap (17 MiB by default): label keys and
// values, their copies, and their bookkeeping (each copy of a label counts
// its characters plus 64 bytes; each scope about 200 more). Past either
// cap, a scope not seen before gets one shared set instead (without the
// lock: a scope too large for what is left is never interned, however
// often it comes back), {lockprof="LabelSetTableFull"},
// its own labels (and its enclosing set's) dropped, and is counted in
// /metrics (lockprof_label_scopes_folded_total, next to
// lockprof_label_scopes). Scopes seen before the cap keep their sets. So
// label values with unbounded cardinality (user or request ids) cost
// bounded memory, but lose their labels once the table is full: prefer
// bounded ones (endpoints, tenants).
#ifndef LOCKPROF_AGENT_LABELS_H_
#define LOCKPROF_AGENT_LABELS_H_

#include <initializer_list>
#include <string_view>
#include <utility>

#include "lockprof/agent/base/export.h"

namespace lockprof {
namespace agent {
class LabelSet;  // agent/record/label_sets.h
}  // namespace agent

// Attaches labels to every sample this thread records while the object
// lives. Must be destroyed on the thread that created it, in LIFO order.
class LOCKPROF_EXPORT ScopedLabels {
 public:
  explicit ScopedLabels(
      std::initializer_list<std::pair<std::string_view, std::string_view>> labels);
  ~ScopedLabels();
  ScopedLabels(const ScopedLabels&) = delete;
  ScopedLabels& operator=(const ScopedLabels&) = delete;

 private:
  const agent::LabelSet* previous_;
};

}  // namespace lockprof

#endif  // LOCKPROF_AGENT_LABELS_H_
