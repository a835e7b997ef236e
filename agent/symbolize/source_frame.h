// SourceFrame: one frame of a symbolized program counter (function, file,
// line), as the symbolizer returns it and the profile builders consume it.
// Its own header so that those consumers need not include the symbolizer.
#ifndef LOCKPROF_AGENT_SYMBOLIZE_SOURCE_FRAME_H_
#define LOCKPROF_AGENT_SYMBOLIZE_SOURCE_FRAME_H_

#include <string>

namespace lockprof::agent {

struct SourceFrame {
  // Demangled, qualified, without parameter list, return type or clone
  // suffix: "(anonymous namespace)::Cache::Set",
  // "std::vector<int, std::allocator<int> >::push_back",
  // "main::{lambda()#1}::operator()", "main".
  std::string function;
  // Mangled linkage name ("_ZN5Cache3SetEi"), or the same as `function` for
  // C symbols and functions without a linkage name.
  std::string system_name;
  // Source file (absolute path as in DWARF, made absolute against the
  // compilation directory if it was relative), "" if unknown.
  std::string file;
  int line = 0;        // 0 if unknown
  int start_line = 0;  // line where the function is declared (DW_AT_decl_line), 0 if unknown
};

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_SYMBOLIZE_SOURCE_FRAME_H_
