#include "lockprof/agent/symbolize/mappings.h"

#include <elf.h>
#include <link.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>
#include <utility>

#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/base/strings.h"
#include "lockprof/agent/record/record.h"

namespace lockprof::agent {
namespace {

// One object from dl_iterate_phdr: its PT_LOAD address ranges and build-id.
struct LoadedObject {
  std::vector<std::pair<uintptr_t, uintptr_t>> loads;  // [lo, hi)
  std::string build_id;
};

// Scans one PT_NOTE segment image for an NT_GNU_BUILD_ID note named "GNU".
std::string FindBuildIdNote(const char* p, size_t size, size_t align) {
  auto round = [align](size_t n) { return (n + align - 1) & ~(align - 1); };
  const char* end = p + size;
  while (static_cast<size_t>(end - p) >= sizeof(ElfW(Nhdr))) {
    ElfW(Nhdr) hdr;
    memcpy(&hdr, p, sizeof(hdr));
    const char* name = p + sizeof(hdr);
    const size_t name_size = round(hdr.n_namesz);
    const size_t desc_size = round(hdr.n_descsz);
    if (name_size > static_cast<size_t>(end - name) ||
        desc_size > static_cast<size_t>(end - name) - name_size) {
      break;  // Truncated or corrupt: stop rather than read past the segment.
    }
    const char* desc = name + name_size;
    if (hdr.n_type == NT_GNU_BUILD_ID && hdr.n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
        hdr.n_descsz > 0) {
      return HexEncode(desc, hdr.n_descsz);
    }
    p = desc + desc_size;
  }
  return "";
}

int CollectObject(struct dl_phdr_info* info, size_t, void* data) {
  auto* objects = static_cast<std::vector<LoadedObject>*>(data);
  LoadedObject obj;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD) {
      const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
      obj.loads.emplace_back(lo, lo + ph.p_memsz);
    }
  }
  for (int i = 0; i < info->dlpi_phnum && obj.build_id.empty(); ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    const uintptr_t hi = lo + ph.p_memsz;
    // Only read notes that lie inside a loaded segment: anything else is not
    // mapped and would fault.
    const bool mapped = std::any_of(obj.loads.begin(), obj.loads.end(),
                                    [&](const auto& r) { return lo >= r.first && hi <= r.second; });
    if (!mapped) continue;
    // Notes are 4-byte aligned, except in segments declared 8-aligned
    // (e.g. .note.gnu.property on x86-64).
    const size_t align = ph.p_align == 8 ? 8 : 4;
    obj.build_id = FindBuildIdNote(reinterpret_cast<const char*>(lo), ph.p_memsz, align);
  }
  objects->push_back(std::move(obj));
  return 0;
}

// dl_iterate_phdr runs under the dynamic loader's lock, which fork() does not
// take: a child forked while a profile reader iterates would inherit it held
// and deadlock on its next dl_iterate_phdr (its first profile, or its first
// C++ exception). lockprof's calls hold this mutex, which fork() takes first.
std::mutex& LoaderMutex() {
  static std::mutex* const mu = NewMutexHeldAcrossFork(ForkRank::kLoader);
  return *mu;
}

std::vector<LoadedObject> LoadedObjects() {
  std::vector<LoadedObject> objects;
  RecorderScope own;  // The loader's lock and this one are lockprof's own.
  std::lock_guard<std::mutex> lock(LoaderMutex());
  dl_iterate_phdr(CollectObject, &objects);
  return objects;
}

// Build-id of the object one of whose PT_LOAD segments overlaps [lo, hi).
// Mappings are page-aligned while segments need not be, hence overlap rather
// than containment.
const std::string* BuildIdOverlapping(const std::vector<LoadedObject>& objects, uintptr_t lo,
                                      uintptr_t hi) {
  for (const LoadedObject& obj : objects) {
    for (const auto& [seg_lo, seg_hi] : obj.loads) {
      if (seg_lo < hi && lo < seg_hi) return &obj.build_id;
    }
  }
  return nullptr;
}

}  // namespace

std::string_view WithoutDeletedSuffix(std::string_view path) {
  constexpr std::string_view kDeletedSuffix = " (deleted)";
  if (EndsWith(path, kDeletedSuffix)) path.remove_suffix(kDeletedSuffix.size());
  return path;
}

std::vector<Mapping> ReadExecutableMappings() {
  std::vector<Mapping> out;
  FILE* f = fopen("/proc/self/maps", "re");
  if (f == nullptr) return out;
  char* line = nullptr;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] == '\n') line[--len] = '\0';
    uintptr_t start, limit;
    uint64_t offset;
    char perms[8];
    int path_pos = -1;
    // Format: start-limit perms offset dev inode [path]
    if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %" SCNx64 " %*x:%*x %*u %n", &start, &limit,
               perms, &offset, &path_pos) < 4 ||
        path_pos < 0) {
      continue;
    }
    if (strlen(perms) < 3 || perms[2] != 'x') continue;
    Mapping m;
    m.start = start;
    m.limit = limit;
    m.file_offset = offset;
    std::string_view path(line + path_pos, len - path_pos);
    while (!path.empty() && (path.front() == ' ' || path.front() == '\t')) path.remove_prefix(1);
    m.path = std::string(WithoutDeletedSuffix(path));
    out.push_back(std::move(m));
  }
  free(line);
  fclose(f);

  // The kernel lists mappings in address order already; sort anyway so that
  // FindMapping's contract never depends on that.
  std::sort(out.begin(), out.end(),
            [](const Mapping& a, const Mapping& b) { return a.start < b.start; });

  const std::vector<LoadedObject> objects = LoadedObjects();
  for (Mapping& m : out) {
    if (const std::string* id = BuildIdOverlapping(objects, m.start, m.limit)) m.build_id = *id;
  }
  return out;
}

int FindMapping(const std::vector<Mapping>& m, uintptr_t pc) {
  // First mapping starting after pc; the candidate is the one before it.
  auto it = std::upper_bound(m.begin(), m.end(), pc,
                             [](uintptr_t v, const Mapping& x) { return v < x.start; });
  if (it == m.begin()) return -1;
  --it;
  return pc < it->limit ? static_cast<int>(it - m.begin()) : -1;
}

std::string BuildIdForAddress(uintptr_t addr) {
  const std::vector<LoadedObject> objects = LoadedObjects();
  const std::string* id = BuildIdOverlapping(objects, addr, addr + 1);
  return id != nullptr ? *id : "";
}

}  // namespace lockprof::agent
