#include "lockprof/agent/labels.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

#include "lockprof/agent/base/env.h"
#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/label_sets.h"
#include "lockprof/agent/record/thread_state.h"

namespace lockprof {
namespace agent {

namespace {

using Extra = std::initializer_list<std::pair<std::string_view, std::string_view>>;

// Probe sequences of the lookup table stop after this many slots.
constexpr size_t kMaxProbes = 64;

// The bytes interned, at most: the cap on sets alone leaves each set's size
// to the caller (a request body as a value, thousands of labels in one
// scope).
constexpr size_t kMinLabelBytes = size_t{16} << 20;
constexpr size_t kLabelBytesPerSet = 256;

// What each copy of a label costs besides its characters: its two
// std::string objects. Counting the characters alone let scopes of short
// labels (a distinct two-letter key per nesting level) take 35 times the
// cap: 584 MiB for 3000 levels.
constexpr size_t kLabelOverhead = 2 * sizeof(std::string);

// Of a set's labels (std::string pairs) or a scope's as given (string_view
// pairs).
template <typename Labels>
size_t BytesOf(const Labels& labels) {
  size_t n = 0;
  for (const auto& [k, v] : labels) n += k.size() + v.size() + kLabelOverhead;
  return n;
}

// One scope's labels as written, with the set they nest in: the key of the
// lock-free lookup, and the interned set it resolves to. Never freed.
struct Scope {
  uint64_t hash;
  const LabelSet* base;
  std::vector<LabelSet::Label> extra;  // In the order given.
  const LabelSet* set;
};

// A new scope's own cost besides its labels: the Scope, and a new set's
// object and map node, with their allocations' headers.
constexpr size_t kScopeOverhead = sizeof(Scope) + sizeof(LabelSet) + 96;

struct Registry {
  // Taken only to add a scope (the first time a label set is seen).
  std::mutex mu;
  // Keyed by content; never freed (samples point at the sets).
  std::map<std::vector<LabelSet::Label>, std::unique_ptr<LabelSet>> sets;
  // Open addressing, 2 * capacity slots (a power of two), filled once each
  // and never emptied: readers probe with acquire loads and no lock.
  std::atomic<const Scope*>* slots = nullptr;
  size_t mask = 0;
  size_t capacity = 0;              // Scopes at most (LOCKPROF_MAX_LABEL_SETS).
  size_t max_bytes = 0;             // Label bytes interned at most.
  std::atomic<size_t> bytes{0};     // Bytes interned (written under mu; only grows).
  std::atomic<size_t> scopes{0};    // Written under mu.
  std::atomic<bool> full{false};    // No scope will be added any more.
  std::atomic<uint64_t> folded{0};  // Scopes given the overflow set.
  LabelSet* overflow = nullptr;
  // Random, so that label values (request paths, say) cannot be chosen to
  // crowd one run of slots, where scopes past kMaxProbes are folded.
  uint64_t seed = 0;
};

// LOCKPROF_MAX_LABEL_SETS, read at start (env.h), not at the first
// ScopedLabels: 0 until then, or if unset or malformed.
std::atomic<int64_t> g_env_capacity{0};
[[maybe_unused]] const bool g_env_read =
    ReadEnvIntAtStart("LOCKPROF_MAX_LABEL_SETS", 16, int64_t{1} << 20, &g_env_capacity);

Registry& TheRegistry() {
  static Registry* const r = [] {
    auto* registry = new Registry;  // Never destroyed: samples may outlive main.
    const int64_t env = g_env_capacity.load(std::memory_order_relaxed);
    registry->capacity = size_t(env != 0 ? env : int64_t{kDefaultMaxLabelSets});
    registry->max_bytes = kMinLabelBytes + registry->capacity * kLabelBytesPerSet;
    size_t slots = 1;
    while (slots < 2 * registry->capacity) slots <<= 1;
    registry->mask = slots - 1;
    registry->slots = new std::atomic<const Scope*>[slots]();
    registry->overflow = LabelSet::New({{kLabelSetsFullKey, kLabelSetsFullValue}});
    if (getrandom(&registry->seed, sizeof registry->seed, GRND_NONBLOCK) != sizeof registry->seed) {
      registry->seed = reinterpret_cast<uintptr_t>(registry) ^ uint64_t(MonotonicNanos());
    }
    // A child must not inherit the mutex held by a thread that does not
    // exist there: fork() waits until no thread is adding a scope.
    HoldAcrossFork(&registry->mu, ForkRank::kLabels);
    return registry;
  }();
  return *r;
}

inline uint64_t Mix(uint64_t h, std::string_view s) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return (h ^ s.size()) * 0x100000001B3ull;  // Separates "ab","c" from "a","bc".
}

uint64_t HashScope(const Registry& r, const LabelSet* base, Extra extra) {
  uint64_t h = 0xCBF29CE484222325ull ^ r.seed ^ reinterpret_cast<uintptr_t>(base);
  for (const auto& [k, v] : extra) h = Mix(Mix(h, k), v);
  // MurmurHash3's finaliser: every bit of h reaches the slot's low bits.
  h = (h ^ (h >> 33)) * 0xFF51AFD7ED558CCDull;
  h = (h ^ (h >> 33)) * 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 33);
}

bool SameScope(const Scope& s, uint64_t hash, const LabelSet* base, Extra extra) {
  if (s.hash != hash || s.base != base || s.extra.size() != extra.size()) return false;
  auto it = s.extra.begin();
  for (const auto& [k, v] : extra) {
    if (it->first != k || it->second != v) return false;
    ++it;
  }
  return true;
}

// The scope's set if it was seen before; nullptr otherwise. Lock-free.
const LabelSet* Find(const Registry& r, uint64_t hash, const LabelSet* base, Extra extra) {
  size_t i = hash & r.mask;
  for (size_t probe = 0; probe < kMaxProbes; ++probe, i = (i + 1) & r.mask) {
    const Scope* s = r.slots[i].load(std::memory_order_acquire);
    if (s == nullptr) return nullptr;  // Slots are never emptied: not there.
    if (SameScope(*s, hash, base, extra)) return s->set;
  }
  return nullptr;
}

std::vector<LabelSet::Label> Merge(const LabelSet* base, Extra extra) {
  std::vector<LabelSet::Label> merged;
  if (base != nullptr) merged = base->labels();
  for (const auto& kv : extra) {
    auto it = std::find_if(merged.begin(), merged.end(),
                           [&](const LabelSet::Label& l) { return l.first == kv.first; });
    if (it != merged.end()) {
      it->second = std::string(kv.second);
    } else {
      merged.emplace_back(std::string(kv.first), std::string(kv.second));
    }
  }
  std::sort(merged.begin(), merged.end());
  return merged;
}

const LabelSet* Fold(Registry& r) {
  r.folded.fetch_add(1, std::memory_order_relaxed);
  return r.overflow;
}

// A scope whose labels would take the interned bytes past the cap: folded,
// and the table marked full only if no ordinary set fits any more (one
// oversized value must not take the labels of every later scope).
const LabelSet* FoldOversized(Registry& r) {
  const size_t bytes = r.bytes.load(std::memory_order_relaxed);
  if (r.max_bytes - std::min(bytes, r.max_bytes) < kLabelBytesPerSet) {
    r.full.store(true, std::memory_order_relaxed);
  }
  return Fold(r);
}

// First sight of a scope: interns its set and publishes the scope.
const LabelSet* Add(Registry& r, uint64_t hash, const LabelSet* base, Extra extra) {
  std::lock_guard<std::mutex> lock(r.mu);
  // Raced: added meanwhile (and counted if kept folded, as in Intern).
  if (const LabelSet* set = Find(r, hash, base, extra)) return set == r.overflow ? Fold(r) : set;
  if (r.scopes.load(std::memory_order_relaxed) >= r.capacity) {
    r.full.store(true, std::memory_order_relaxed);
    return Fold(r);
  }
  size_t i = hash & r.mask;
  for (size_t probe = 0; r.slots[i].load(std::memory_order_relaxed) != nullptr;
       ++probe, i = (i + 1) & r.mask) {
    if (probe + 1 >= kMaxProbes) return Fold(r);  // A crowded run: rare at half load.
  }
  const size_t interned = r.bytes.load(std::memory_order_relaxed);
  size_t bytes = BytesOf(extra) + kScopeOverhead;
  if (interned + bytes > r.max_bytes) return FoldOversized(r);  // Before Merge copies them.
  std::vector<LabelSet::Label> merged = Merge(base, extra);
  auto found = r.sets.find(merged);
  const LabelSet* set;
  if (found != r.sets.end()) {
    set = found->second.get();
  } else if (const size_t set_bytes = 2 * BytesOf(merged);  // The map's key, the set's copy.
             interned + bytes + set_bytes > r.max_bytes) {
    // The scope's own labels fit, the set they make with the outer ones
    // does not: the scope is kept, folded, so that its next construction
    // finds it without this mutex (and without copying the outer labels,
    // megabytes of them perhaps, again).
    set = FoldOversized(r);
  } else {
    bytes += set_bytes;
    found = r.sets.emplace(std::move(merged), nullptr).first;
    found->second.reset(LabelSet::New(found->first));
    set = found->second.get();
  }
  r.bytes.store(interned + bytes, std::memory_order_relaxed);
  auto* scope = new Scope{hash, base, {}, set};
  for (const auto& [k, v] : extra) scope->extra.emplace_back(std::string(k), std::string(v));
  r.scopes.store(r.scopes.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  r.slots[i].store(scope, std::memory_order_release);
  return scope->set;
}

}  // namespace

LabelSet* LabelSet::New(std::vector<Label> labels) {
  auto* set = new LabelSet;
  set->labels_ = std::move(labels);
  return set;
}

const LabelSet* LabelSet::Intern(const LabelSet* base, Extra extra) {
  Registry& r = TheRegistry();
  const uint64_t hash = HashScope(r, base, extra);
  // A scope kept folded is counted at each construction, as the others.
  if (const LabelSet* set = Find(r, hash, base, extra)) return set == r.overflow ? Fold(r) : set;
  if (r.full.load(std::memory_order_relaxed)) return Fold(r);
  // A scope too large for the bytes left is folded without the registry's
  // mutex: it is never interned, so every construction of it gets here
  // (a request body as a label on every request), and the bytes interned
  // only grow, so it will never fit.
  if (r.bytes.load(std::memory_order_relaxed) + BytesOf(extra) + kScopeOverhead > r.max_bytes) {
    return FoldOversized(r);
  }
  return Add(r, hash, base, extra);
}

size_t LabelScopesInterned() { return TheRegistry().scopes.load(std::memory_order_relaxed); }

size_t LabelScopesCapacity() { return TheRegistry().capacity; }

uint64_t LabelScopesFolded() { return TheRegistry().folded.load(std::memory_order_relaxed); }

}  // namespace agent

ScopedLabels::ScopedLabels(
    std::initializer_list<std::pair<std::string_view, std::string_view>> labels)
    : previous_(agent::tls_state.labels) {
  agent::tls_state.labels = agent::LabelSet::Intern(previous_, labels);
}

ScopedLabels::~ScopedLabels() { agent::tls_state.labels = previous_; }

}  // namespace lockprof
