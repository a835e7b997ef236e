// User labels: lockprof's equivalent of Go's pprof.Do / SetGoroutineLabels.
//
//   {
//     lockprof::ScopedLabels labels({{"endpoint", "/api/cart"}});
//     HandleCart();   // every sample recorded on this thread in here
//   }                 // carries endpoint="/api/cart"
//
// Labels nest: an inner scope adds to (and may override keys of) the outer
// one. A label set is interned once, when the scope is created (that takes a
// lock and may allocate); recording then only copies a pointer, so labels cost
// the hot path nothing. Interned sets live for the life of the process: use
// labels with bounded cardinality (endpoints, tenants), not request ids.
#ifndef LOCKPROF_AGENT_LABELS_H_
#define LOCKPROF_AGENT_LABELS_H_

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
  static const LabelSet* Intern(
      const LabelSet* base,
      std::initializer_list<std::pair<std::string_view, std::string_view>> extra);

 private:
  std::vector<Label> labels_;
};

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
