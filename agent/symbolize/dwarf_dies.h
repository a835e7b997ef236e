// Reading DWARF debugging-information entries (DIEs) for the symbolizer:
// function names (qualified the way a demangler would print them), source
// paths, inlined call sites and the code ranges of functions. Pure helpers
// over libdw's API: no caching, no locking (the symbolizer does both).
#ifndef LOCKPROF_AGENT_SYMBOLIZE_DWARF_DIES_H_
#define LOCKPROF_AGENT_SYMBOLIZE_DWARF_DIES_H_

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <string>
#include <vector>

#include "lockprof/agent/symbolize/source_frame.h"

namespace lockprof::agent {

// One address range of a function's code.
struct FunctionRange {
  Dwarf_Addr low, high;
  Dwarf_Die die;
};
// One address range of a compilation unit's code (module-relative, as
// dwfl_module_nextcu's bias makes them), and the unit.
struct UnitRange {
  Dwarf_Addr low, high;
  Dwarf_Die* unit;  // dwfl's own: valid as long as the module.
};

// The code ranges of every compilation unit in `mod`, sorted by address,
// from each unit's own DW_AT_ranges or low/high pc. (.debug_aranges, which
// dwfl_module_addrdie reads, may cover only some units: clang does not emit
// it by default, so in a program of clang and GCC objects its lookup answers
// a GCC unit for clang code.)
std::vector<UnitRange> UnitRanges(Dwfl_Module* mod);

// The unit of `ranges` (UnitRanges') whose code holds module-relative
// `addr`, or nullptr.
Dwarf_Die* UnitAt(const std::vector<UnitRange>& ranges, Dwarf_Addr addr);

// Fills function/system_name/start_line from a subprogram or inlined
// subroutine DIE. `symbol` is the ELF symbol at the pc, for the real
// function's DIE only: it names functions that have no DW_AT_linkage_name
// (GCC omits it for internal linkage and lambdas) more cheaply and exactly
// than the DIE tree does. Leaves them empty if nothing names the DIE (the
// frame still has its file and line).
void NameFromDie(Dwarf_Die* die, const char* symbol, SourceFrame* frame);

// Makes a relative DWARF path absolute against the CU's DW_AT_comp_dir.
std::string AbsolutePath(Dwarf_Die* cu, const char* path);

// DW_AT_call_file/DW_AT_call_line of an inlined_subroutine DIE: where, in
// its caller, the inlined call was.
void CallSite(Dwarf_Die* die, std::string* file, int* line);

// Appends the code ranges of the functions under `parent` to *out. Looks
// inside namespaces and classes: clang and GCC's LTO put definitions there.
void CollectFunctions(Dwarf_Die* parent, std::vector<FunctionRange>* out);

// Appends to *path the scopes under `parent` whose code contains addr,
// outermost first: lexical blocks and inlined calls. (dwarf_getscopes does
// not do: above an inlined call it continues with the inlined function's
// definition, not its caller, and it does not look inside namespaces.)
void FindScopes(Dwarf_Die* parent, Dwarf_Addr addr, std::vector<Dwarf_Die>* path);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_SYMBOLIZE_DWARF_DIES_H_
