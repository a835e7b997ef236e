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
// (BENCHMARKS.md: about 30-60 ns per 2-label scope, constructed and
// destroyed). Recording then only copies a pointer.
//
// Memory is capped: at most LOCKPROF_MAX_LABEL_SETS (default 4096) distinct
// scopes are interned, for the life of the process. Past that, a scope not
// seen before gets one shared set instead, {lockprof="LabelSetTableFull"},
// its own labels (and its enclosing set's) dropped, and is counted in
// /metrics (lockprof_label_scopes_folded_total, next to
// lockprof_label_scopes). Scopes seen before the cap keep their sets. So
// label values with unbounded cardinality (user or request ids) cost
// bounded memory, but lose their labels once the table is full: prefer
// bounded ones (endpoints, tenants).
#ifndef LOCKPROF_AGENT_LABELS_H_
#define LOCKPROF_AGENT_LABELS_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lockprof/agent/base/export.h"

namespace lockprof {
namespace agent {

// An immutable, interned set of key/value labels, sorted by key.
class LabelSet {
 public:
  using Label = std::pair<std::string, std::string>;
  const std::vector<Label>& labels() const { return labels_; }

  // Returns the interned set equal to `base` plus `extra` (extra wins on
  // equal keys). `base` may be nullptr.
  // Past the cap, the overflow set (see the file comment). Thread-safe;
  // lock-free once this (base, extra) was seen.
  static const LabelSet* Intern(
      const LabelSet* base,
      std::initializer_list<std::pair<std::string_view, std::string_view>> extra);

  // A new set, not interned: used by Intern's registry only.
  static LabelSet* New(std::vector<Label> labels);

 private:
  std::vector<Label> labels_;
};

inline constexpr size_t kDefaultMaxLabelSets = 4096;
// The one label of the set that scopes past the cap share.
inline constexpr char kLabelSetsFullKey[] = "lockprof";
inline constexpr char kLabelSetsFullValue[] = "LabelSetTableFull";

// Distinct scopes interned so far, the cap, and scopes given the overflow
// set (for /metrics).
size_t LabelScopesInterned();
size_t LabelScopesCapacity();
uint64_t LabelScopesFolded();

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
