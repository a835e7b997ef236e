#include "lockprof/agent/pprof/resolved_profile.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "lockprof/agent/record/label_sets.h"
#include "lockprof/agent/symbolize/symbolizer.h"

namespace lockprof::agent {

namespace {

// Merge key: a slot's full key. Duplicate slots (rare: two threads inserting
// the same new key at once) resolve to the same sample.
struct KeyLess {
  bool operator()(const SampleKey* a, const SampleKey* b) const {
    if (a->depth != b->depth) return a->depth < b->depth;
    int c = std::memcmp(a->pcs, b->pcs, sizeof(uintptr_t) * size_t(a->depth));
    if (c != 0) return c < 0;
    if (a->lock_id != b->lock_id || a->lock == nullptr) {
      return std::tie(a->lock_id, a->mode, a->shard, a->labels) <
             std::tie(b->lock_id, b->mode, b->shard, b->labels);
    }
    c = std::strcmp(a->lock_name, b->lock_name);  // One address, two names: see SameKey.
    if (c != 0) return c < 0;
    return std::tie(a->mode, a->shard, a->labels) < std::tie(b->mode, b->shard, b->labels);
  }
};

// The slots' values summed per key (KeyLess); overflow slots into *overflow.
using MergedSlots = std::map<const SampleKey*, std::array<int64_t, 2>, KeyLess>;
MergedSlots Merge(const std::vector<SlotValues>& slots, std::array<int64_t, 2>* overflow) {
  MergedSlots merged;
  for (const SlotValues& s : slots) {
    auto& v = s.overflow ? *overflow : merged[s.key];
    v[0] += s.values[0];
    v[1] += s.values[1];
  }
  return merged;
}

bool IsOwnLabel(std::string_view key) { return key == "lock" || key == "mode" || key == "shard"; }

// Appends a sample's user labels (sorted by key, each key once). One named
// as lockprof's own would make the sample's lock ambiguous to every reader
// (pprof's -tagfocus, the contention page): it is renamed as Prometheus
// renames a scraped label that collides with a target's, "exported_"
// prepended until the key is free, so that a user's own "exported_lock"
// keeps its name and "lock" becomes "exported_exported_lock" (one key with
// two values would be ambiguous in its turn).
void AppendUserLabels(const std::vector<LabelSet::Label>& labels,
                      std::vector<std::pair<std::string, std::string>>* out) {
  for (const auto& [k, val] : labels) {
    if (!IsOwnLabel(k)) out->emplace_back(k, val);
  }
  // Every key taken is in *out by now (lockprof's own, the user's others),
  // and so is each renamed one once added.
  auto taken = [&](const std::string& key) {
    return IsOwnLabel(key) || std::any_of(out->begin(), out->end(),
                                          [&](const auto& label) { return label.first == key; });
  };
  for (const auto& [k, val] : labels) {
    if (!IsOwnLabel(k)) continue;
    std::string key = "exported_" + k;
    while (taken(key)) key = "exported_" + key;
    out->emplace_back(std::move(key), val);
  }
}

}  // namespace

class Resolver {
 public:
  explicit Resolver(ResolvedProfile* out) : out_(out) { out_->mappings = ReadExecutableMappings(); }

  // Location index for a return address, after trimming internal inlined
  // frames; -1 if the whole location is lockprof-internal.
  int LocationFor(uintptr_t return_address, bool leaf_side) {
    auto it = index_.find(return_address);
    if (it == index_.end()) it = index_.emplace(return_address, Add(return_address)).first;
    const Entry& e = it->second;
    if (leaf_side && e.internal) return -1;
    return e.location;
  }

  // Appends the locations of `pcs` (return addresses, leaf first) to
  // `sample`, leaving out lockprof's own frames at the leaf end.
  void AppendStack(const uintptr_t* pcs, int depth, ResolvedSample* sample) {
    bool leaf_side = true;
    for (int i = 0; i < depth; ++i) {
      const int loc = LocationFor(pcs[i], leaf_side);
      if (loc < 0) continue;
      leaf_side = false;
      sample->locations.push_back(loc);
      sample->return_addresses.push_back(pcs[i]);
    }
  }

  int OverflowLocation() {
    if (overflow_ < 0) {
      overflow_ = int(out_->locations.size());
      out_->locations.push_back({kLostSamplesReturnAddress - 1,
                                 -1,
                                 {SourceFrame{kLostSamplesFrame, kLostSamplesFrame, "", 0, 0}}});
    }
    return overflow_;
  }

 private:
  struct Entry {
    int location;
    bool internal;  // Every frame at this address is lockprof's.
  };

  Entry Add(uintptr_t return_address) {
    uintptr_t pc = return_address - 1;
    std::vector<SourceFrame> frames = Symbolizer::Global().Symbolize(pc);
    // Trim internal frames from the inner end: an internal function inlined
    // into user code keeps only the user's frames.
    size_t keep_from = 0;
    while (keep_from < frames.size() && IsInternalFrame(frames[keep_from].function)) ++keep_from;
    bool internal = !frames.empty() && keep_from == frames.size();
    if (!internal) frames.erase(frames.begin(), frames.begin() + long(keep_from));
    int location = int(out_->locations.size());
    out_->locations.push_back({pc, FindMapping(out_->mappings, pc), std::move(frames)});
    return {location, internal};
  }

  ResolvedProfile* out_;
  std::unordered_map<uintptr_t, Entry> index_;
  int overflow_ = -1;
};

bool IsInternalFrame(const std::string& function) {
  static constexpr std::string_view kPrefixes[] = {
      "lockprof::Mutex::",
      "lockprof::MutexLock::",
      "lockprof::SharedMutex::",
      "lockprof::CondVar::",
      "lockprof::Atomic<",
      "lockprof::agent::",
      "lockprof::internal::",
      "lockprof::ShardedMap<",
      "lockprof::CowPtr<",
      "lockprof::ShardedCounter::",
      "std::lock_guard<lockprof::",
      "std::unique_lock<lockprof::",
      "std::shared_lock<lockprof::",
      "std::scoped_lock<lockprof::",
      "std::condition_variable_any::",
      // The standard library's own locks, over the interposed pthread
      // functions (primitives/interpose/): the leaf is the code that locked.
      "std::mutex::",
      "std::recursive_mutex::",
      "std::timed_mutex::",
      "std::recursive_timed_mutex::",
      "std::shared_mutex::",
      "std::shared_timed_mutex::",
      "std::__shared_mutex_pthread::",
      "std::__shared_mutex_cv::",
      "std::lock_guard<std::",
      "std::unique_lock<std::",
      "std::shared_lock<std::",
      "std::scoped_lock<std::",
      "std::condition_variable::",
      "std::_V2::condition_variable_any::",
      "__gthread_",
      "__gthrw_",
  };
  const std::string_view f(function);
  for (std::string_view p : kPrefixes) {
    if (f.substr(0, p.size()) == p) return true;
  }
  // absl::Mutex's release, when ProfileAbslMutexes() traces it, whatever
  // Abseil's inline namespace (absl::lts_2023..., Debian's absl::debian3).
  return f.substr(0, 6) == "absl::" &&
         (f.find("::Mutex::") != f.npos || f.find("MutexLock::") != f.npos);
}

SampleResolver::SampleResolver(ResolvedProfile* out)
    : out_(out), resolver_(std::make_unique<Resolver>(out)) {}

SampleResolver::~SampleResolver() = default;

ResolvedSample& SampleResolver::Add(const uintptr_t* pcs, int depth, int64_t v0, int64_t v1) {
  ResolvedSample sample;
  sample.values[0] = v0;
  sample.values[1] = v1;
  resolver_->AppendStack(pcs, depth, &sample);
  out_->samples.push_back(std::move(sample));
  return out_->samples.back();
}

ResolvedProfile Resolve(const ProfileInfo& info, const std::vector<SlotValues>& slots,
                        int64_t time_nanos, int64_t duration_nanos) {
  ResolvedProfile out;
  out.info = &info;
  out.time_nanos = time_nanos;
  out.duration_nanos = duration_nanos;
  out.period = info.Period();

  // Merge duplicates and drop zeros first: symbolize only what is shown.
  std::array<int64_t, 2> overflow{0, 0};
  const MergedSlots merged = Merge(slots, &overflow);

  Resolver resolver(&out);
  for (const auto& [key, v] : merged) {
    if (v[0] == 0 && v[1] == 0) continue;
    ResolvedSample sample;
    sample.values[0] = v[0];
    sample.values[1] = v[1];
    resolver.AppendStack(key->pcs, key->depth, &sample);
    if (key->lock != nullptr) sample.str_labels.emplace_back("lock", key->lock);
    if (const char* mode = LockModeName(key->mode)) sample.str_labels.emplace_back("mode", mode);
    if (key->shard >= 0) sample.num_labels.push_back({"shard", key->shard, "index"});
    if (key->labels != nullptr) AppendUserLabels(key->labels->labels(), &sample.str_labels);
    out.samples.push_back(std::move(sample));
  }
  if (overflow[0] != 0 || overflow[1] != 0) {
    ResolvedSample sample;
    sample.values[0] = overflow[0];
    sample.values[1] = overflow[1];
    sample.locations.push_back(resolver.OverflowLocation());
    sample.return_addresses.push_back(kLostSamplesReturnAddress);
    out.samples.push_back(std::move(sample));
  }
  std::stable_sort(
      out.samples.begin(), out.samples.end(),
      [](const ResolvedSample& a, const ResolvedSample& b) { return a.values[1] > b.values[1]; });
  return out;
}

int64_t CountResolvedSamples(const std::vector<SlotValues>& slots) {
  std::array<int64_t, 2> overflow{0, 0};
  int64_t n = 0;
  for (const auto& [key, v] : Merge(slots, &overflow)) n += (v[0] != 0 || v[1] != 0);
  return n + (overflow[0] != 0 || overflow[1] != 0);
}

}  // namespace lockprof::agent
