// The internal half of user labels (the public half is agent/labels.h):
// interned label sets, what every recorded sample points to, and their
// counts for /metrics.
#ifndef LOCKPROF_AGENT_RECORD_LABEL_SETS_H_
#define LOCKPROF_AGENT_RECORD_LABEL_SETS_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lockprof::agent {

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

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_RECORD_LABEL_SETS_H_
