#include "lockprof/agent/labels.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof {
namespace agent {

namespace {
struct Interned {
  std::mutex mu;
  // Keyed by content; values are never freed (samples point at them).
  std::map<std::vector<LabelSet::Label>, std::unique_ptr<LabelSet>> sets;
};
Interned& Registry() {
  static Interned* const r = [] {
    auto* registry = new Interned;  // Never destroyed: samples may outlive main.
    // A child must not inherit the mutex held by a thread that does not
    // exist there: fork() waits until no thread is interning.
    HoldAcrossFork(&registry->mu, ForkRank::kLabels);
    return registry;
  }();
  return *r;
}
}  // namespace

const LabelSet* LabelSet::Intern(
    const LabelSet* base,
    std::initializer_list<std::pair<std::string_view, std::string_view>> extra) {
  std::vector<Label> merged;
  if (base != nullptr) merged = base->labels_;
  for (const auto& kv : extra) {
    auto it = std::find_if(merged.begin(), merged.end(),
                           [&](const Label& l) { return l.first == kv.first; });
    if (it != merged.end()) {
      it->second = std::string(kv.second);
    } else {
      merged.emplace_back(std::string(kv.first), std::string(kv.second));
    }
  }
  std::sort(merged.begin(), merged.end());
  Interned& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto& slot = r.sets[merged];
  if (!slot) {
    slot = std::make_unique<LabelSet>();
    slot->labels_ = std::move(merged);
  }
  return slot.get();
}

}  // namespace agent

ScopedLabels::ScopedLabels(
    std::initializer_list<std::pair<std::string_view, std::string_view>> labels)
    : previous_(agent::tls_state.labels) {
  agent::tls_state.labels = agent::LabelSet::Intern(previous_, labels);
}

ScopedLabels::~ScopedLabels() { agent::tls_state.labels = previous_; }

}  // namespace lockprof
