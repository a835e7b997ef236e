// ResolvedProfile: a profile's samples with symbols, ready to encode.
//
// Resolving is everything between the lock-free tables and an output format:
// merging duplicate keys, dropping all-zero samples, symbolizing each
// distinct address (cached), trimming lockprof's own frames from the leaf end
// so that a stack starts at the user's code, and sorting by the second value
// (delay), largest first, as Go does. Both the pprof encoder and the debug=1
// text writer consume it. Runs on the reader's thread (an HTTP worker, the
// uploader), never on an application thread.
#ifndef LOCKPROF_AGENT_PPROF_RESOLVED_PROFILE_H_
#define LOCKPROF_AGENT_PPROF_RESOLVED_PROFILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lockprof/agent/symbolize/mappings.h"
#include "lockprof/agent/symbolize/source_frame.h"
#include "lockprof/agent/tables/profile_tables.h"

namespace lockprof::agent {

// The synthetic frame that stands for every key folded into a full table's
// overflow entry (as Go shows runtime._LostContendedRuntimeLock): its name,
// and the fake, stable, non-zero return address outside every mapping that
// the debug=1 text writes for it (its location's address is one less), so
// that /debug/pprof/symbol can name it too.
inline constexpr char kLostSamplesFrame[] = "lockprof.LostSamplesStackTableFull";
inline constexpr uintptr_t kLostSamplesReturnAddress = 0x2;

struct ResolvedLocation {
  uintptr_t address;                // Call address: return address - 1.
  int mapping_index;                // Into ResolvedProfile::mappings, or -1.
  std::vector<SourceFrame> frames;  // Innermost first; empty if unknown.
};

// A numeric label. `unit` names what num counts (profile.proto's num_unit):
// pprof's reader drops a numeric label whose num and unit are both empty,
// so a label that can be 0 (a shard index) must have one.
struct NumLabel {
  std::string key;
  int64_t num = 0;
  const char* unit = nullptr;  // nullptr: none.
};

struct ResolvedSample {
  std::vector<int> locations;               // Indices into ResolvedProfile::locations, leaf first.
  std::vector<uintptr_t> return_addresses;  // The raw stack, for debug=1.
  std::vector<std::pair<std::string, std::string>> str_labels;
  std::vector<NumLabel> num_labels;
  int64_t values[2];
};

struct ResolvedProfile {
  const ProfileInfo* info = nullptr;
  int64_t time_nanos = 0;
  int64_t duration_nanos = 0;  // 0 unless a delta.
  int64_t period = 1;          // For the debug=1 "sampling period=" line.
  std::vector<Mapping> mappings;
  std::vector<ResolvedLocation> locations;
  std::vector<ResolvedSample> samples;
};

// Resolves `slots` (values as read from, or computed against, the profile's
// table) into a profile. Samples whose values are all zero are dropped.
ResolvedProfile Resolve(const ProfileInfo& info, const std::vector<SlotValues>& slots,
                        int64_t time_nanos, int64_t duration_nanos);

// How many samples Resolve would make of `slots`, without symbolizing: the
// count a profile's index shows must be what the profile then serves.
int64_t CountResolvedSamples(const std::vector<SlotValues>& slots);

class Resolver;

// Builds a profile sample by sample from raw stacks, for profiles that do
// not come from a table (the held-locks profile). Resolving, trimming and
// mappings as Resolve does.
class SampleResolver {
 public:
  explicit SampleResolver(ResolvedProfile* out);
  ~SampleResolver();
  SampleResolver(const SampleResolver&) = delete;
  SampleResolver& operator=(const SampleResolver&) = delete;

  // Appends a sample for `pcs` (return addresses, leaf first) with these
  // values; the caller adds its labels to the sample returned.
  ResolvedSample& Add(const uintptr_t* pcs, int depth, int64_t v0, int64_t v1);

 private:
  ResolvedProfile* out_;
  std::unique_ptr<Resolver> resolver_;
};

// True for frames that belong to lockprof's implementation (or to standard
// lock wrappers instantiated on lockprof types), which are trimmed from the
// leaf end of every stack.
bool IsInternalFrame(const std::string& function);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PPROF_RESOLVED_PROFILE_H_
