#include "lockprof/primitives/interpose/lock_names.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>

#include "absl/base/attributes.h"
#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/base/quiet_calls.h"
#include "lockprof/agent/symbolize/demangle.h"
#include "lockprof/primitives/interpose/loaded_file.h"

namespace lockprof::interpose {
namespace {

// Open addressing, insert-only: a key, once set, never changes, and its
// name is published after it (nullptr meanwhile: a reader computes it again,
// and the first to finish publishes).
struct NameSlot {
  std::atomic<uintptr_t> lock;
  std::atomic<const char*> name;
};
ABSL_CONST_INIT NameSlot g_names[kMaxNamedLocks * 2] = {};
constexpr int kProbe = 16;
// A slot's name while its object is unloaded: the next lookup scans again
// (another object may be loaded at the address).
constexpr char kStale[] = "(stale)";

// Names are copied here, not into the heap: a lookup runs inside the
// application's lock calls, maybe inside its own malloc (an allocator that
// takes pthread mutexes), where calling malloc again would deadlock. Bounded:
// once full, new locks stay unnamed.
constexpr size_t kArenaBytes = 256 * 1024;
constexpr size_t kMaxNameBytes = 255;
ABSL_CONST_INIT char g_arena[kArenaBytes] = {};
ABSL_CONST_INIT std::atomic<size_t> g_arena_used{0};

// A copy of `name` (at most kMaxNameBytes of it) that lives as long as the
// process; nullptr once the arena is full.
const char* CopyToArena(const char* name, size_t n) {
  n = std::min(n, kMaxNameBytes);
  const size_t at = g_arena_used.fetch_add(n + 1, std::memory_order_relaxed);
  if (at + n + 1 > kArenaBytes) return nullptr;
  std::memcpy(g_arena + at, name, n);
  g_arena[at + n] = '\0';
  return g_arena + at;
}

// Object files opened by NameFromFile (LockNameFileScans).
ABSL_CONST_INIT std::atomic<uint64_t> g_file_scans{0};

// The symbol of the ELF file at `path` that covers file-relative address
// `offset`, from .symtab (every symbol, where not stripped) or else .dynsym
// (exported ones), copied to the arena and made readable; nullptr if none,
// or if the file is not the object loaded at `found` (loaded_file.h).
const char* NameFromFile(const char* path, uintptr_t offset, const dl_find_object& found) {
  g_file_scans.fetch_add(1, std::memory_order_relaxed);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st;
  void* map = MAP_FAILED;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    map = mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  }
  close(fd);
  if (map == MAP_FAILED) return nullptr;
  const auto* base = static_cast<const unsigned char*>(map);
  const size_t size = size_t(st.st_size);
  const auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
  const char* symbol_name = nullptr;
  size_t found_len = 0;
  if (size >= sizeof(*eh) && std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
      FileMatchesImage(base, size, found.dlfo_map_start, found.dlfo_link_map->l_addr) &&
      eh->e_shoff != 0 && eh->e_shoff + uint64_t(eh->e_shnum) * sizeof(ElfW(Shdr)) <= size) {
    const auto* sh = reinterpret_cast<const ElfW(Shdr)*>(base + eh->e_shoff);
    for (const uint32_t type : {uint32_t{SHT_SYMTAB}, uint32_t{SHT_DYNSYM}}) {
      for (int i = 0; i < eh->e_shnum && symbol_name == nullptr; ++i) {
        if (sh[i].sh_type != type || sh[i].sh_link >= eh->e_shnum) continue;
        const ElfW(Shdr)& strtab = sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > size || strtab.sh_offset + strtab.sh_size > size) {
          continue;
        }
        const auto* syms = reinterpret_cast<const ElfW(Sym)*>(base + sh[i].sh_offset);
        const size_t n = sh[i].sh_size / sizeof(ElfW(Sym));
        for (size_t k = 0; k < n; ++k) {
          const ElfW(Sym)& s = syms[k];
          if (ELF64_ST_TYPE(s.st_info) != STT_OBJECT || s.st_name >= strtab.sh_size) continue;
          if (offset >= s.st_value && offset < s.st_value + (s.st_size ? s.st_size : 1)) {
            symbol_name = reinterpret_cast<const char*>(base + strtab.sh_offset + s.st_name);
            found_len = strnlen(symbol_name, strtab.sh_size - s.st_name);
            break;
          }
        }
      }
    }
  }
  const char* name = nullptr;
  if (symbol_name != nullptr && found_len > 0) {
    const std::string_view symbol(symbol_name, found_len);
    char demangled[kMaxNameBytes];
    if (const size_t n = agent::DemangleDataName(symbol, demangled, sizeof demangled); n > 0) {
      name = CopyToArena(demangled, n);
    } else if (symbol.substr(0, 2) == "_Z") {
      // A C++ name DemangleDataName does not cover (a function's static, a
      // template's member): the demangler allocates, the one allocation left
      // here.
      const std::string pretty = agent::PrettyFunctionName(symbol);
      name = CopyToArena(pretty.data(), pretty.size());
    } else {
      name = CopyToArena(symbol_name, found_len);
    }
  }
  munmap(map, size);
  return name;
}

// The symbol naming `lock`, which lies in the object `found` describes;
// kUnnamedLock if no symbol covers it.
//
// Without the dynamic loader's lock (dladdr takes it): a thread inside
// dlopen() holds it while a library's constructors run, and a constructor
// that waits for a lock this thread holds would never get it. Without
// cancellation or a change to errno: see quiet_calls.h.
const char* Lookup(const void* lock, const dl_find_object& found) {
  const link_map* map = found.dlfo_link_map;
  if (map == nullptr) return kUnnamedLock;
  agent::NoCancelNoErrno quiet;
  // The main program's l_name is "": read it through /proc/self/exe.
  const char* path =
      map->l_name != nullptr && map->l_name[0] != '\0' ? map->l_name : "/proc/self/exe";
  const char* name = NameFromFile(path, reinterpret_cast<uintptr_t>(lock) - map->l_addr, found);
  return name != nullptr ? name : kUnnamedLock;
}

size_t HomeOf(uintptr_t key) {
  return size_t((key * 0x9E3779B97F4A7C15ull) >> 32) % std::size(g_names);
}

}  // namespace

bool InLoadedObject(const void* lock) {
  dl_find_object found;
  return _dl_find_object(const_cast<void*>(lock), &found) == 0;
}

namespace {

// Lookups under way, and unloads (BeginUnload): each side announces itself
// before it looks at the other's count (both sequentially consistent), so
// at least one of them sees the other.
std::atomic<int> g_lookups{0};
std::atomic<int> g_unloads{0};

// A fork()ed child has one thread: a lookup or an unload of another parent
// thread under way at the fork never ends there, and the child's next
// dlclose() would wait for it for good.
void ForgetUnloadFenceInChild() {
  g_lookups.store(0, std::memory_order_relaxed);
  g_unloads.store(0, std::memory_order_relaxed);
}
[[maybe_unused]] const bool g_fence_fork_handler =
    (agent::OnForkChild(&ForgetUnloadFenceInChild), true);

}  // namespace

void BeginUnload() {
  g_unloads.fetch_add(1, std::memory_order_seq_cst);
  while (g_lookups.load(std::memory_order_seq_cst) != 0) sched_yield();
}

void EndUnload() { g_unloads.fetch_sub(1, std::memory_order_release); }

const char* LockName(const void* lock) {
  const uintptr_t key = reinterpret_cast<uintptr_t>(lock);
  if (key == 0) return kUnnamedLock;
  const size_t home = HomeOf(key);
  NameSlot* slot = nullptr;
  const char* seen = nullptr;
  dl_find_object found;
  bool in_object = false;
  for (int i = 0; i < kProbe && slot == nullptr; ++i) {
    NameSlot& s = g_names[(home + size_t(i)) % std::size(g_names)];
    uintptr_t k = s.lock.load(std::memory_order_acquire);
    if (k == 0) {
      if (_dl_find_object(const_cast<void*>(lock), &found) != 0) {
        return kUnnamedLock;  // Heap or stack: not cached.
      }
      in_object = true;
      // Claimed before the scan, so that a lock is scanned once (bar scans
      // racing with the claimer's), and a lock with no room near its home
      // never.
      // Failing, the exchange leaves another thread's key in k.
      if (s.lock.compare_exchange_strong(k, key, std::memory_order_acq_rel)) k = key;
    }
    if (k != key) continue;
    seen = s.name.load(std::memory_order_acquire);
    if (seen != nullptr && seen != kStale) return seen;
    slot = &s;  // Claimed here, being filled by another thread, or unloaded since.
  }
  // No room near its home: memory stays bounded, the lock stays unnamed.
  if (slot == nullptr) return kUnnamedLock;
  // A stale slot's address may be the heap's by now.
  if (!in_object && _dl_find_object(const_cast<void*>(lock), &found) != 0) return kUnnamedLock;
  // Lookup reads the object's image: not while it may be unloaded.
  g_lookups.fetch_add(1, std::memory_order_seq_cst);
  if (g_unloads.load(std::memory_order_seq_cst) != 0) {
    g_lookups.fetch_sub(1, std::memory_order_release);
    return kUnnamedLock;  // Not kept: named when next asked for.
  }
  const char* name = Lookup(lock, found);
  g_lookups.fetch_sub(1, std::memory_order_release);
  // Another thread may have named it first (its copy is kept; the arena
  // space of ours is lost, once).
  if (!slot->name.compare_exchange_strong(seen, name, std::memory_order_acq_rel) &&
      seen != nullptr && seen != kStale) {
    return seen;
  }
  return name;
}

uint64_t LockNameFileScans() { return g_file_scans.load(std::memory_order_relaxed); }

void ForgetLockNamesIn(const void* begin, const void* end) {
  const auto lo = reinterpret_cast<uintptr_t>(begin), hi = reinterpret_cast<uintptr_t>(end);
  for (NameSlot& s : g_names) {
    const uintptr_t k = s.lock.load(std::memory_order_acquire);
    if (k >= lo && k < hi) s.name.store(kStale, std::memory_order_release);
  }
}

}  // namespace lockprof::interpose
