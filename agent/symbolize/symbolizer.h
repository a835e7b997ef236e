// Symbolizer: program counters of this process -> function, file and line,
// with inlined frames expanded, for the Function/Line tables of a pprof
// profile.
//
// Built on elfutils' libdwfl over the process's own mappings. Per pc it
// returns the chain of source frames that the instruction belongs to:
// innermost inlined callee first, the real (out-of-line) function last, each
// with its own file:line - the order pprof's Location.line wants.
//
// Sources of information, best first:
//   1. DWARF (-g): qualified names, files, lines, inline chains. Separate
//      debug files are found by build-id (/usr/lib/debug/.build-id) and
//      .gnu_debuglink, on the local disk only: debuginfod is never queried,
//      so symbolizing never touches the network even if DEBUGINFOD_URLS is
//      set.
//   2. The ELF symbol table (.symtab, else .dynsym): function name only.
//   3. dladdr(): exported symbols of objects whose file cannot be opened
//      (e.g. a shared library deleted after it was loaded). dladdr() waits
//      for the dynamic loader's lock, which a dlopen() holds while the
//      library's constructors run (and one of those may wait for a lock
//      the program holds): it is called without the Symbolizer's mutex
//      (which fork() takes), and not at all inside a LoaderLockFree scope.
//
// Files are checked against what is mapped (by GNU build-id): one that
// changed on disk since it was loaded is ignored rather than trusted. The
// main executable is read through /proc/self/exe, so symbolization keeps
// working after the binary was moved, replaced or deleted while the process
// runs.
//
// Not for the recording path: it allocates, takes a mutex, reads files and
// may take milliseconds on a cold lookup. Application threads must never call
// it from a lock's fast path; profile builders do.
#ifndef LOCKPROF_AGENT_SYMBOLIZE_SYMBOLIZER_H_
#define LOCKPROF_AGENT_SYMBOLIZE_SYMBOLIZER_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lockprof/agent/symbolize/dwarf_dies.h"
#include "lockprof/agent/symbolize/source_frame.h"

// elfutils/libdwfl.h, kept out of this header.
struct Dwfl;
struct Dwfl_Module;

namespace lockprof::agent {

class Symbolizer {
 public:
  // Cheap: nothing is read until the first Symbolize call.
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Symbolizes `pc`, which must be an address inside the instruction (callers
  // pass return address - 1). Returns frames innermost first: the inlined
  // callee(s) first, the outermost (real) function last, each with its own
  // file:line (the line in the inlined callee for the first, the call site
  // line in each caller for the next). Without DWARF for pc, a single frame
  // with the symbol name only (file "", line 0).
  //
  // Empty vector if nothing is known about pc (no loaded object, or no
  // symbol covers it).
  //
  // Results are cached per pc: the cache grows with the number of distinct
  // pcs asked about, which for profiles is bounded by their tables (capacity
  // x stack depth). A pc outside every known object makes the Symbolizer
  // re-read the process's mappings, but only if the dynamic loader loaded or
  // unloaded something since the last read (dlopen), so unknown pcs stay
  // cheap. Once the loader has unloaded an object (dlclose), the mappings are
  // re-read before the next answer, and a cached pc where another object is
  // mapped now is forgotten; one where nothing is keeps its names (a
  // plugin's frames stay named in profiles after it is unloaded).
  //
  // Cost: the first pc in an object opens its ELF file (and debug file) and
  // sorts its symbols: a few milliseconds for a typical binary, ~50-150 ms
  // for libc with its separate debug info installed. The first pc in a
  // compilation unit indexes the unit's functions (one walk over its DIEs).
  // Each further new pc: microseconds to tens of microseconds. Cached: a hash
  // lookup and a copy of the result (~0.2 us).
  //
  // Thread-safe: serialized on an internal mutex.
  std::vector<SourceFrame> Symbolize(uintptr_t pc);

  // As Symbolize, but a pc that is not cached yet is symbolized without
  // being added to the cache. For pcs a client chooses
  // (/debug/pprof/symbol): however many it asks about, the cache stays as it
  // was. (The pcs of this process's profiles, which is what pprof asks
  // about, are cached when a profile is built.)
  std::vector<SourceFrame> SymbolizeWithoutCaching(uintptr_t pc);

  // Entries in the per-pc cache. Thread-safe.
  size_t cache_size();

  // While one lives, this thread's lookups never wait for the dynamic
  // loader's lock (no dladdr() fallback): for what must answer while the
  // program is stuck (the held-locks page, stall and lock-order reports).
  class LoaderLockFree {
   public:
    LoaderLockFree() : was_(active_) { active_ = true; }
    ~LoaderLockFree() { active_ = was_; }
    LoaderLockFree(const LoaderLockFree&) = delete;
    LoaderLockFree& operator=(const LoaderLockFree&) = delete;
    static bool active() { return active_; }

   private:
    static thread_local bool active_;
    const bool was_;
  };

  // Shared instance, created on first use and never destroyed (so that no
  // static destructor can race with a late profile build). Thread-safe.
  // fork() waits for a symbolization in progress in it to finish.
  static Symbolizer& Global();

 private:
  struct FunctionIndex;
  struct SymbolIndex;

  // Symbolize, adding a pc not cached yet to the cache if `cache`.
  std::vector<SourceFrame> Lookup(uintptr_t pc, bool cache);
  std::vector<SourceFrame> SymbolizeUncached(uintptr_t pc);
  // Name of the ELF symbol (function) that holds pc in `mod`, or null.
  const char* SymbolAt(Dwfl_Module* mod, uintptr_t pc);
  // The compilation unit whose code holds pc in `mod`, its bias in *bias;
  // null if none.
  Dwarf_Die* UnitOf(Dwfl_Module* mod, uintptr_t pc, Dwarf_Addr* bias);
  // The inline chain at pc from DWARF, innermost first; empty without DWARF
  // for pc. `symbol` is the ELF symbol at pc, or null.
  std::vector<SourceFrame> FramesFromDwarf(Dwfl_Module* mod, uintptr_t pc, const char* symbol);
  // (Re)reports the process's modules to dwfl_. Returns false on failure.
  bool Report();

  std::mutex mu_;
  Dwfl* dwfl_ = nullptr;  // Guarded by mu_. Created on first use.
  // dl_iterate_phdr's load/unload counters at the last Report().
  unsigned long long dl_adds_ = 0, dl_subs_ = 0;  // Guarded by mu_.
  // A pc's frames, and the object they came from (ObjectKey).
  struct Cached {
    std::vector<SourceFrame> frames;
    uint64_t object;
  };
  std::unordered_map<uintptr_t, Cached> cache_;  // Guarded by mu_.
  // The module that holds pc, or null; its load address and name in *low
  // and *name if they are not null. Requires mu_.
  Dwfl_Module* ModuleAt(uintptr_t pc, Dwarf_Addr* low = nullptr, const char** name = nullptr);
  // The object mapped at pc (a hash of its name and load address), 0 for
  // none. Requires mu_.
  uint64_t ObjectKey(uintptr_t pc);
  // After an unload: forgets what was cached for pcs where another object
  // is mapped now. Requires mu_.
  void ForgetRemapped();
  // By compilation unit (its DIE's address in the mapped DWARF); cleared
  // whenever modules are re-reported. Guarded by mu_.
  std::unordered_map<const void*, std::unique_ptr<FunctionIndex>> function_index_;
  // By module; cleared whenever modules are re-reported. Guarded by mu_.
  std::unordered_map<Dwfl_Module*, std::unique_ptr<SymbolIndex>> symbol_index_;
  // Each module's units by address (dwarf_dies.h, UnitRanges), built the
  // first time its .debug_aranges does not answer; cleared whenever modules
  // are re-reported. Guarded by mu_.
  std::unordered_map<Dwfl_Module*, std::vector<UnitRange>> unit_index_;
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_SYMBOLIZE_SYMBOLIZER_H_
