// Executable mappings of the current process, for the Mapping table of a
// pprof profile.
//
// pprof resolves a Location's address through the Mapping that contains it:
// the mapping's file, offset and build-id let a symbolizer that runs on
// another machine (or later, after a redeploy) find the exact binary. The
// build-id is read from the loaded image's PT_NOTE segment in memory, so it is
// right even when the file on disk was replaced or deleted after it was
// loaded.
//
// Neither function is for the recording path: ReadExecutableMappings reads
// /proc/self/maps, allocates and takes the dynamic loader's lock. Profile
// builders call it once per profile.
#ifndef LOCKPROF_AGENT_SYMBOLIZE_MAPPINGS_H_
#define LOCKPROF_AGENT_SYMBOLIZE_MAPPINGS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lockprof::agent {

struct Mapping {
  uintptr_t start = 0, limit = 0;  // [start, limit) of an executable (r-xp) mapping
  uint64_t file_offset = 0;
  std::string path;      // as in /proc/self/maps ("" for anonymous; "[vdso]" kept as is)
  std::string build_id;  // lower-case hex GNU build-id of that file, "" if none
};

// Executable mappings of this process, sorted by start, from /proc/self/maps,
// each with its GNU build-id (read from the loaded image's PT_NOTE via
// dl_iterate_phdr - no file I/O needed, works even if the binary was deleted).
// A trailing " (deleted)" is stripped from paths. Returns an empty vector if
// /proc/self/maps cannot be read.
//
// Thread-safe. Cost: one read of /proc/self/maps plus one dl_iterate_phdr walk
// (tens of microseconds for a typical process). Not for the recording path
// (allocates, reads /proc).
std::vector<Mapping> ReadExecutableMappings();

// Index of the mapping in `m` (sorted by start, as returned by
// ReadExecutableMappings) that contains pc, or -1. O(log n); no allocation.
int FindMapping(const std::vector<Mapping>& m, uintptr_t pc);

// Lower-case hex GNU build-id of the loaded object (main executable, shared
// library or vDSO) one of whose PT_LOAD segments contains `addr`, or "" if no
// loaded object contains it or it has no build-id. Reads memory only (no file
// I/O); takes the dynamic loader's lock for the walk. Thread-safe.
std::string BuildIdForAddress(uintptr_t addr);

// `path` without the " (deleted)" the kernel appends to the name of a file
// that was deleted after it was mapped (in /proc/self/maps and in the
// module names libdwfl reads from there).
std::string_view WithoutDeletedSuffix(std::string_view path);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_SYMBOLIZE_MAPPINGS_H_
