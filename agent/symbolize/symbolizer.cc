#include "lockprof/agent/symbolize/symbolizer.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <link.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <string_view>
#include <tuple>
#include <utility>

#include "lockprof/agent/base/fault_free_copy.h"
#include "lockprof/agent/base/fork.h"
#include "lockprof/agent/base/strings.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/symbolize/demangle.h"
#include "lockprof/agent/symbolize/dwarf_dies.h"
#include "lockprof/agent/symbolize/mappings.h"

namespace lockprof::agent {
namespace {

// The frame of a function known only by its symbol (no DWARF for it).
SourceFrame SymbolFrame(const char* symbol) {
  SourceFrame frame;
  frame.function = PrettyFunctionName(symbol);
  frame.system_name = StripCloneSuffix(symbol);
  return frame;
}

// ---------------------------------------------------------------------------
// dwfl callbacks.

// GNU build-id (hex) of the ELF file open on `fd`, "" if none.
std::string FileBuildId(int fd) {
  std::string hex;
  if (Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr)) {
    const void* bits = nullptr;
    const ssize_t n = dwelf_elf_gnu_build_id(elf, &bits);
    hex = HexEncode(bits, n > 0 ? size_t(n) : 0);
    elf_end(elf);
  }
  return hex;
}

// find_elf: like dwfl_linux_proc_find_elf, but robust to files that changed
// on disk since they were loaded.
int FindElf(Dwfl_Module* mod, void** userdata, const char* module_name, Dwarf_Addr base,
            char** file_name, Elf** elfp) {
  Dwarf_Addr low = 0, high = 0;
  dwfl_module_info(mod, nullptr, &low, &high, nullptr, nullptr, nullptr, nullptr);
  const std::string_view name = WithoutDeletedSuffix(module_name);
  // What is mapped there, from the build-id note in memory. A file that does
  // not match it is rejected: wrong names are worse than none.
  const std::string mapped_id = BuildIdForAddress(low);
  auto matches = [&mapped_id](int fd) { return mapped_id.empty() || FileBuildId(fd) == mapped_id; };

  // The main executable (its range holds the program headers the kernel
  // loaded): its path may now name another file, or nothing, but
  // /proc/self/exe opens the image that was executed - unless the program
  // was started as "ld.so ./program", which the build-id check catches.
  const uintptr_t phdr = getauxval(AT_PHDR);
  if (phdr >= low && phdr < high) {
    const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && matches(fd)) {
      // The path (not /proc/self/exe) lets .gnu_debuglink be searched next
      // to where the binary lives.
      *file_name = strndup(name.data(), name.size());
      return fd;
    }
    if (fd >= 0) close(fd);
  }
  // Others by path. A shared library deleted since it was loaded is not
  // found (Lookup falls back to dladdr for it).
  const int fd = dwfl_linux_proc_find_elf(mod, userdata, module_name, base, file_name, elfp);
  if (fd >= 0 && !matches(fd)) {
    close(fd);
    free(*file_name);
    *file_name = nullptr;
    return -1;
  }
  return fd;
}

// True if the ELF file open on `fd` carries the same build-id as `mod`, or
// `mod` has none to compare with.
bool SameBuildId(Dwfl_Module* mod, int fd) {
  const unsigned char* bits = nullptr;
  GElf_Addr vaddr;
  const int n = dwfl_module_build_id(mod, &bits, &vaddr);
  return n <= 0 || FileBuildId(fd) == HexEncode(bits, size_t(n));
}

// find_debuginfo: dwfl_standard_find_debuginfo minus its last resort, the
// debuginfod client. A profiler inside a service must not download
// gigabytes from the network because a login shell set DEBUGINFOD_URLS.
int FindDebuginfo(Dwfl_Module* mod, void** userdata, const char* modname, GElf_Addr base,
                  const char* file_name, const char* debuglink_file, GElf_Word debuglink_crc,
                  char** debuginfo_file_name) {
  // By build-id under /usr/lib/debug/.build-id/ (how Debian's -dbgsym
  // packages install). Validates the build-id itself.
  int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
  if (fd >= 0 || debuglink_file == nullptr) return fd;

  // By .gnu_debuglink (or, with crc 0, .gnu_debugaltlink): next to the file,
  // in .debug/ there, or mirrored under /usr/lib/debug.
  std::vector<std::string> candidates;
  if (debuglink_file[0] == '/') {
    candidates.emplace_back(debuglink_file);
  } else if (file_name != nullptr) {
    std::string_view dir(file_name);
    const size_t slash = dir.rfind('/');
    dir = slash == std::string_view::npos ? std::string_view(".") : dir.substr(0, slash);
    const std::string d(dir);
    candidates.push_back(d + "/" + debuglink_file);
    candidates.push_back(d + "/.debug/" + debuglink_file);
    candidates.push_back("/usr/lib/debug" + d + "/" + debuglink_file);
  }
  for (const std::string& path : candidates) {
    // Never hand back the file itself: its debuglink names its own basename
    // when it was not actually stripped.
    if (file_name != nullptr && path == file_name) continue;
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    // The alt file (crc 0) has its own build-id; a debuglink target must
    // match the module's.
    if (debuglink_crc == 0 || SameBuildId(mod, fd)) {
      *debuginfo_file_name = strdup(path.c_str());
      return fd;
    }
    close(fd);
  }
  return -1;
}

const Dwfl_Callbacks kCallbacks = {
    /*find_elf=*/FindElf,
    /*find_debuginfo=*/FindDebuginfo,
    /*section_address=*/dwfl_offline_section_address,
    /*debuginfo_path=*/nullptr,  // The default: ":.debug:/usr/lib/debug".
};

}  // namespace

// The functions of one compilation unit sorted by address: finding the one
// that holds a pc is a binary search, not a walk over the unit's DIEs
// (thousands at the top level of a C++ unit, more inside namespaces).
struct Symbolizer::FunctionIndex {
  std::vector<FunctionRange> ranges;
};

// The function symbols of one module sorted by address (then best first):
// dwfl_module_addrinfo scans the whole symbol table on every call, which is
// milliseconds per pc in a binary with a few hundred thousand symbols.
struct Symbolizer::SymbolIndex {
  struct Symbol {
    GElf_Addr addr, size;
    GElf_Word shndx;
    const char* name;  // Owned by the module.
    int rank;          // Among aliases, lower is better.
  };
  std::vector<Symbol> symbols;
};

const char* Symbolizer::SymbolAt(Dwfl_Module* mod, uintptr_t pc) {
  using Symbol = SymbolIndex::Symbol;
  std::unique_ptr<SymbolIndex>& index = symbol_index_[mod];
  if (index == nullptr) {
    index = std::make_unique<SymbolIndex>();
    const int n = dwfl_module_getsymtab(mod);  // .symtab, else .dynsym.
    for (int i = 0; i < n; ++i) {
      GElf_Sym sym;
      GElf_Addr addr;
      GElf_Word shndx;
      const char* name = dwfl_module_getsym_info(mod, i, &sym, &addr, &shndx, nullptr, nullptr);
      const int type = GELF_ST_TYPE(sym.st_info);
      if (name == nullptr || name[0] == '\0' || shndx == SHN_UNDEF ||
          (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE)) {
        continue;
      }
      // Like addrinfo: sized before sizeless, global before weak before local.
      const int bind = GELF_ST_BIND(sym.st_info);
      const int rank = (sym.st_size == 0 ? 4 : 0) + (bind == STB_GLOBAL ? 0
                                                     : bind == STB_WEAK ? 1
                                                                        : 2);
      index->symbols.push_back({addr, sym.st_size, shndx, name, rank});
    }
    std::sort(index->symbols.begin(), index->symbols.end(), [](const Symbol& a, const Symbol& b) {
      return a.addr != b.addr ? a.addr < b.addr : a.rank < b.rank;
    });
  }
  const std::vector<Symbol>& symbols = index->symbols;
  auto it = std::upper_bound(symbols.begin(), symbols.end(), pc,
                             [](uintptr_t a, const Symbol& s) { return a < s.addr; });
  if (it == symbols.begin()) return nullptr;
  --it;
  while (it != symbols.begin() && std::prev(it)->addr == it->addr) --it;  // The best alias.
  if (it->size != 0) return pc < it->addr + it->size ? it->name : nullptr;
  // A sizeless symbol (assembly) reaches up to the next one, but not out of
  // its section (past "_end" or "__bss_start", say).
  Dwarf_Addr section_offset = pc, bias;
  Elf_Scn* section = dwfl_module_address_section(mod, &section_offset, &bias);
  return section != nullptr && elf_ndxscn(section) == it->shndx ? it->name : nullptr;
}

Dwarf_Die* Symbolizer::UnitOf(Dwfl_Module* mod, uintptr_t pc, Dwarf_Addr* bias) {
  Dwarf_Die* cudie = dwfl_module_addrdie(mod, pc, bias);
  // That reads .debug_aranges, which may list only some units (clang emits
  // none by default), and answers the unit before a gap for an address in
  // it: checked against the unit's own ranges.
  if (cudie != nullptr && dwarf_haspc(cudie, pc - *bias) == 1) return cudie;
  if (dwfl_module_getdwarf(mod, bias) == nullptr) return nullptr;  // No DWARF at all.
  auto [units, fresh] = unit_index_.try_emplace(mod);
  if (fresh) units->second = UnitRanges(mod);
  return UnitAt(units->second, pc - *bias);
}

std::vector<SourceFrame> Symbolizer::FramesFromDwarf(Dwfl_Module* mod, uintptr_t pc,
                                                     const char* symbol) {
  std::vector<SourceFrame> frames;
  Dwarf_Addr bias = 0;
  Dwarf_Die* cudie = UnitOf(mod, pc, &bias);
  if (cudie == nullptr) return frames;
  const Dwarf_Addr addr = pc - bias;

  std::unique_ptr<FunctionIndex>& index = function_index_[cudie->addr];
  if (index == nullptr) {
    index = std::make_unique<FunctionIndex>();
    CollectFunctions(cudie, &index->ranges);
    std::sort(index->ranges.begin(), index->ranges.end(),
              [](const FunctionRange& a, const FunctionRange& b) { return a.low < b.low; });
  }
  auto fn = std::upper_bound(index->ranges.begin(), index->ranges.end(), addr,
                             [](Dwarf_Addr a, const FunctionRange& r) { return a < r.low; });
  if (fn == index->ranges.begin() || addr >= (--fn)->high) return frames;
  std::vector<Dwarf_Die> scopes{fn->die};
  FindScopes(&scopes[0], addr, &scopes);

  std::string file;
  int line = 0;
  if (Dwarf_Line* l = dwarf_getsrc_die(cudie, addr)) {
    file = AbsolutePath(cudie, dwarf_linesrc(l, nullptr, nullptr));
    dwarf_lineno(l, &line);
  }
  // Innermost first; each inlined call's site is the line of the next frame.
  for (auto die = scopes.rbegin(); die != scopes.rend(); ++die) {
    const int tag = dwarf_tag(&*die);
    if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram && tag != DW_TAG_entry_point) {
      continue;  // Lexical blocks and the like.
    }
    SourceFrame frame;
    NameFromDie(&*die, tag == DW_TAG_inlined_subroutine ? nullptr : symbol, &frame);
    frame.file = file;
    frame.line = line;
    frames.push_back(std::move(frame));
    if (tag == DW_TAG_inlined_subroutine) CallSite(&*die, &file, &line);
  }
  return frames;
}

namespace {

// dl_iterate_phdr's counts of objects loaded and unloaded so far.
std::pair<unsigned long long, unsigned long long> DlCounters() {
  std::pair<unsigned long long, unsigned long long> counters{0, 0};
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t size, void* data) {
        if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
          auto* c = static_cast<std::pair<unsigned long long, unsigned long long>*>(data);
          *c = {info->dlpi_adds, info->dlpi_subs};
        }
        return 1;  // The counters are global: the first object has them.
      },
      &counters);
  return counters;
}

}  // namespace

Symbolizer::Symbolizer() = default;

Symbolizer::~Symbolizer() {
  if (dwfl_ != nullptr) dwfl_end(dwfl_);
}

Symbolizer& Symbolizer::Global() {
  static Symbolizer* const instance = [] {
    auto* s = new Symbolizer;
    // A child must not inherit mu_ held by a thread that does not exist
    // there (its first profile would deadlock), nor libdw state half-updated:
    // fork() waits until no thread is symbolizing.
    HoldAcrossFork(&s->mu_, ForkRank::kSymbolizer);
    return s;
  }();
  return *instance;
}

bool Symbolizer::Report() {
  if (dwfl_ == nullptr) {
    dwfl_ = dwfl_begin(&kCallbacks);
    if (dwfl_ == nullptr) return false;
  }
  // Counters first: a dlopen racing with the read below then only costs one
  // more report later, never a missed library.
  std::tie(dl_adds_, dl_subs_) = DlCounters();
  // The indexes point into modules that may go away now.
  function_index_.clear();
  symbol_index_.clear();
  unit_index_.clear();
  // dwfl_report_begin keeps modules that are reported again (with their
  // opened files and DWARF) and drops the ones that went away.
  dwfl_report_begin(dwfl_);
  const int rc = dwfl_linux_proc_report(dwfl_, getpid());
  dwfl_report_end(dwfl_, nullptr, nullptr);
  return rc == 0;
}

std::vector<SourceFrame> Symbolizer::Symbolize(uintptr_t pc) { return Lookup(pc, true); }

std::vector<SourceFrame> Symbolizer::SymbolizeWithoutCaching(uintptr_t pc) {
  return Lookup(pc, false);
}

Dwfl_Module* Symbolizer::ModuleAt(uintptr_t pc, Dwarf_Addr* low, const char** name) {
  Dwfl_Module* mod = dwfl_ != nullptr ? dwfl_addrmodule(dwfl_, pc) : nullptr;
  if (mod == nullptr) return nullptr;
  // dwfl_addrmodule may answer with the last module for an address above
  // all of them: check the range.
  Dwarf_Addr start = 0, end = 0;
  const char* module_name =
      dwfl_module_info(mod, nullptr, &start, &end, nullptr, nullptr, nullptr, nullptr);
  if (pc < start || pc >= end) return nullptr;
  if (low != nullptr) *low = start;
  if (name != nullptr) *name = module_name;
  return mod;
}

uint64_t Symbolizer::ObjectKey(uintptr_t pc) {
  Dwarf_Addr low = 0;
  const char* name = nullptr;
  if (ModuleAt(pc, &low, &name) == nullptr) return 0;
  uint64_t h = 0xcbf29ce484222325ull ^ low;
  for (const char* c = name != nullptr ? name : ""; *c != '\0'; ++c) {
    h = (h ^ static_cast<unsigned char>(*c)) * 0x100000001b3ull;
  }
  return h | 1;  // Never 0.
}

void Symbolizer::ForgetRemapped() {
  Report();
  for (auto it = cache_.begin(); it != cache_.end();) {
    const uint64_t now = ObjectKey(it->first);
    it = now != 0 && now != it->second.object ? cache_.erase(it) : std::next(it);
  }
}

size_t Symbolizer::cache_size() {
  RecorderScope own;
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

thread_local bool Symbolizer::LoaderLockFree::active_ = false;

std::vector<SourceFrame> Symbolizer::Lookup(uintptr_t pc, bool cache) {
  // Whoever asks (a handler on the host's thread, the public report calls),
  // the symbolizer's locks, libdw's and the loader's are lockprof's own:
  // never profiled or tracked as the program's.
  RecorderScope own;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // An object unloaded since the last read: another may be mapped at its
    // addresses now, which the cache and dwfl's modules would give its names.
    if (dwfl_ != nullptr && DlCounters().second != dl_subs_) ForgetRemapped();
    if (auto it = cache_.find(pc); it != cache_.end()) return it->second.frames;
    std::vector<SourceFrame> frames = SymbolizeUncached(pc);
    // Unknown pcs are not cached: a later dlopen may map code there.
    if (cache && !frames.empty()) cache_.emplace(pc, Cached{frames, ObjectKey(pc)});
    if (!frames.empty() || LoaderLockFree::active()) return frames;
  }
  // The loader's exported symbols, outside mu_ (see the header). Not cached:
  // rare, and a cached name would outlive an unload unnoticed.
  std::vector<SourceFrame> frames;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(pc), &info) != 0 && info.dli_sname != nullptr) {
    // The name lies in the object's string table, which a dlclose() on
    // another thread may unmap as soon as dladdr has let go of the loader's
    // lock (this path serves objects whose file could not be opened: one
    // replaced on disk, as a plugin reloaded is): copied without faulting.
    std::string name(kMaxFaultFreeCopy, '\0');
    CopyNameFaultFree(info.dli_sname, name.data(), name.size());
    name.resize(std::strlen(name.c_str()));
    if (!name.empty()) frames.push_back(SymbolFrame(name.c_str()));
  }
  return frames;
}

std::vector<SourceFrame> Symbolizer::SymbolizeUncached(uintptr_t pc) {
  if (dwfl_ == nullptr) Report();
  Dwfl_Module* mod = ModuleAt(pc);
  if (mod == nullptr && dwfl_ != nullptr && DlCounters() != std::make_pair(dl_adds_, dl_subs_)) {
    Report();
    mod = ModuleAt(pc);
  }

  std::vector<SourceFrame> frames;
  const char* symbol = nullptr;
  if (mod != nullptr) {
    symbol = SymbolAt(mod, pc);
    frames = FramesFromDwarf(mod, pc, symbol);
  }
  if (symbol == nullptr || symbol[0] == '\0') return frames;
  if (frames.empty()) frames.push_back(SymbolFrame(symbol));
  // A DIE without any name (rare: artificial functions) borrows the symbol.
  for (SourceFrame& frame : frames) {
    if (frame.function.empty()) {
      SourceFrame named = SymbolFrame(symbol);
      frame.function = std::move(named.function);
      frame.system_name = std::move(named.system_name);
    }
  }
  return frames;
}

}  // namespace lockprof::agent
