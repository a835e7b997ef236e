#include "lockprof/primitives/interpose/lock_names.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/attributes.h"
#include "lockprof/agent/symbolize/demangle.h"

namespace lockprof::interpose {
namespace {

// Open addressing, insert-only: a key, once set, never changes, and its
// name is published after it (nullptr meanwhile: a reader computes it again).
struct NameSlot {
  std::atomic<uintptr_t> lock;
  std::atomic<const char*> name;
};
ABSL_CONST_INIT NameSlot g_names[kMaxNamedLocks * 2] = {};
constexpr int kProbe = 16;

// The .symtab symbol of `path` that covers file-relative address `offset`:
// its (mangled) name, or "" if none.
std::string SymtabObjectAt(const char* path, uintptr_t offset) {
  std::string found;
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return found;
  struct stat st;
  void* map = MAP_FAILED;
  if (fstat(fd, &st) == 0 && st.st_size > 0) {
    map = mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  }
  close(fd);
  if (map == MAP_FAILED) return found;
  const auto* base = static_cast<const unsigned char*>(map);
  const size_t size = size_t(st.st_size);
  const auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
  if (size >= sizeof(*eh) && std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_shoff != 0 &&
      eh->e_shoff + uint64_t(eh->e_shnum) * sizeof(ElfW(Shdr)) <= size) {
    const auto* sh = reinterpret_cast<const ElfW(Shdr)*>(base + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum && found.empty(); ++i) {
      if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
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
          const char* name = reinterpret_cast<const char*>(base + strtab.sh_offset + s.st_name);
          found.assign(name, strnlen(name, strtab.sh_size - s.st_name));
          break;
        }
      }
    }
  }
  munmap(map, size);
  return found;
}

// The symbol naming `lock`, demangled; nullptr if `lock` is in no object;
// kUnnamedLock if it is, but no symbol covers it.
const char* Lookup(const void* lock) {
  // Heap and stack locks, the common case, leave here without the loader's
  // lock (_dl_find_object is lock-free; dladdr is not).
  dl_find_object found;
  if (_dl_find_object(const_cast<void*>(lock), &found) != 0) return nullptr;
  Dl_info info;
  ElfW(Sym)* sym = nullptr;
  link_map* map = nullptr;
  if (dladdr1(lock, &info, reinterpret_cast<void**>(&sym), RTLD_DL_SYMENT) == 0) return nullptr;
  if (dladdr1(lock, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0) return nullptr;
  std::string name;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(lock);
  if (sym != nullptr && info.dli_sname != nullptr && ELF64_ST_TYPE(sym->st_info) == STT_OBJECT &&
      addr < reinterpret_cast<uintptr_t>(info.dli_saddr) + sym->st_size) {
    name = info.dli_sname;
  } else if (map != nullptr) {
    // The main program's l_name is "": read it through /proc/self/exe.
    const char* path =
        map->l_name != nullptr && map->l_name[0] != '\0' ? map->l_name : "/proc/self/exe";
    name = SymtabObjectAt(path, addr - map->l_addr);
  }
  if (name.empty()) return kUnnamedLock;
  return strdup(agent::PrettyFunctionName(name).c_str());
}

}  // namespace

bool InLoadedObject(const void* lock) {
  dl_find_object found;
  return _dl_find_object(const_cast<void*>(lock), &found) == 0;
}

const char* LockName(const void* lock) {
  const uintptr_t key = reinterpret_cast<uintptr_t>(lock);
  if (key == 0) return kUnnamedLock;
  const size_t n = sizeof(g_names) / sizeof(g_names[0]);
  const size_t home = size_t((key * 0x9E3779B97F4A7C15ull) >> 32) % n;
  for (int i = 0; i < kProbe; ++i) {
    NameSlot& s = g_names[(home + i) % n];
    const uintptr_t k = s.lock.load(std::memory_order_acquire);
    if (k == key) {
      const char* name = s.name.load(std::memory_order_acquire);
      if (name != nullptr) return name;
      break;  // Being filled in by another thread.
    }
    if (k == 0) break;
  }
  const char* name = Lookup(lock);
  if (name == nullptr) return kUnnamedLock;  // Heap or stack: not cached.
  for (int i = 0; i < kProbe; ++i) {
    NameSlot& s = g_names[(home + i) % n];
    uintptr_t k = s.lock.load(std::memory_order_acquire);
    if (k == 0 && s.lock.compare_exchange_strong(k, key, std::memory_order_acq_rel)) k = key;
    if (k == key) {
      const char* expected = nullptr;
      if (!s.name.compare_exchange_strong(expected, name, std::memory_order_acq_rel) &&
          name != kUnnamedLock) {
        free(const_cast<char*>(name));  // Another thread named it first.
        return expected;
      }
      return name;
    }
  }
  // No room near its home: memory stays bounded, the lock stays unnamed.
  if (name != kUnnamedLock) free(const_cast<char*>(name));
  return kUnnamedLock;
}

}  // namespace lockprof::interpose
