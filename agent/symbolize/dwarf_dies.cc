// DWARF debugging-information entries (DIEs): the names, call sites and
// address ranges the symbolizer reads out of them. See dwarf_dies.h.
#include "lockprof/agent/symbolize/dwarf_dies.h"

#include <dwarf.h>

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string>
#include <vector>

#include "lockprof/agent/base/strings.h"
#include "lockprof/agent/symbolize/demangle.h"

namespace lockprof::agent {

namespace {

const char* AttrString(Dwarf_Die* die, unsigned int name) {
  Dwarf_Attribute attr;
  // _integrate follows DW_AT_abstract_origin and DW_AT_specification, where
  // inlined and out-of-line instances keep their names.
  return dwarf_formstring(dwarf_attr_integrate(die, name, &attr));
}

// Name of a function DIE without a linkage name (extern "C", main, C code,
// internal-linkage C++ functions, lambdas), qualified by the enclosing
// namespaces, classes and functions.
std::string QualifiedName(Dwarf_Die* die, const char* name) {
  Dwarf_Die cu;
  if (dwarf_diecu(die, &cu, nullptr, nullptr) == nullptr) return name;
  const int lang = dwarf_srclang(&cu);
  if (lang != DW_LANG_C_plus_plus && lang != DW_LANG_C_plus_plus_03 &&
      lang != DW_LANG_C_plus_plus_11 && lang != DW_LANG_C_plus_plus_14) {
    return name;  // C has no nesting to walk for.
  }
  // The nesting is at the declaration: follow the out-of-line or inlined
  // instance to its abstract origin and on to the in-class declaration.
  Dwarf_Die decl = *die;
  for (int hops = 0; hops < 8; ++hops) {
    Dwarf_Attribute attr;
    Dwarf_Die next;
    if ((dwarf_attr(&decl, DW_AT_abstract_origin, &attr) == nullptr &&
         dwarf_attr(&decl, DW_AT_specification, &attr) == nullptr) ||
        dwarf_formref_die(&attr, &next) == nullptr) {
      break;
    }
    decl = next;
  }
  // The DIEs enclosing decl. DIEs are stored in preorder, so a DIE's
  // subtree spans the offsets up to its next sibling: descend into the one
  // sibling per level whose span holds decl, skipping the others whole
  // (dwarf_getscopes_die would walk the entire unit).
  std::vector<Dwarf_Die> parents;
  const Dwarf_Off target = dwarf_dieoffset(&decl);
  Dwarf_Die parent, child;
  bool found =
      dwarf_diecu(&decl, &parent, nullptr, nullptr) != nullptr && dwarf_child(&parent, &child) == 0;
  while (found && dwarf_dieoffset(&child) != target) {
    Dwarf_Die next;
    const bool last = dwarf_siblingof(&child, &next) != 0;
    if (target > dwarf_dieoffset(&child) && (last || target < dwarf_dieoffset(&next))) {
      parents.push_back(child);
      found = dwarf_child(&child, &child) == 0;
    } else {
      found = !last;
      child = next;
    }
  }
  std::string qualified;
  for (Dwarf_Die& parent_die : parents) {
    Dwarf_Die* scope = &parent_die;
    const char* part = dwarf_diename(scope);
    switch (dwarf_tag(scope)) {
      case DW_TAG_namespace:
        qualified += part != nullptr ? part : "(anonymous namespace)";
        break;
      case DW_TAG_class_type:
      case DW_TAG_structure_type:
      case DW_TAG_union_type:
        qualified += part != nullptr ? part : "{unnamed type}";  // e.g. a lambda's closure
        break;
      case DW_TAG_subprogram:  // A local class: restart from the function's full name.
        if (const char* linkage = AttrString(scope, DW_AT_linkage_name)) {
          qualified = PrettyFunctionName(linkage);
        } else if (part != nullptr) {
          qualified += part;
        }
        break;
      default:
        continue;
    }
    qualified += "::";
  }
  return qualified + name;
}

}  // namespace

void NameFromDie(Dwarf_Die* die, const char* symbol, SourceFrame* frame) {
  const char* linkage = AttrString(die, DW_AT_linkage_name);
  if (linkage == nullptr) linkage = AttrString(die, DW_AT_MIPS_linkage_name);
  const char* name = AttrString(die, DW_AT_name);
  if (linkage == nullptr && symbol != nullptr && name != nullptr) {
    // Unless identical code folding gave this code another function's name.
    const std::string pretty = PrettyFunctionName(symbol);
    if (pretty == name || EndsWith(pretty, "::" + std::string(name))) linkage = symbol;
  }
  if (linkage != nullptr) {
    frame->system_name = StripCloneSuffix(linkage);
    frame->function = PrettyFunctionName(linkage);
  } else if (name != nullptr) {
    frame->function = QualifiedName(die, name);
    frame->system_name = frame->function;
  } else {
    return;
  }
  int decl_line = 0;
  if (dwarf_decl_line(die, &decl_line) == 0) frame->start_line = decl_line;
}

std::string AbsolutePath(Dwarf_Die* cu, const char* path) {
  if (path == nullptr) return "";
  if (path[0] == '/' || path[0] == '\0') return path;
  Dwarf_Attribute attr;
  const char* comp_dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr));
  if (comp_dir == nullptr || comp_dir[0] == '\0') return path;
  std::string out(comp_dir);
  if (out.back() != '/') out += '/';
  return out + path;
}

void CallSite(Dwarf_Die* die, std::string* file, int* line) {
  file->clear();
  *line = 0;
  Dwarf_Attribute attr;
  Dwarf_Word value;
  if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &value) == 0) {
    *line = static_cast<int>(value);
  }
  Dwarf_Die cu;
  Dwarf_Files* files;
  size_t nfiles;
  if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &value) == 0 &&
      dwarf_diecu(die, &cu, nullptr, nullptr) != nullptr &&
      dwarf_getsrcfiles(&cu, &files, &nfiles) == 0 && value < nfiles) {
    *file = AbsolutePath(&cu, dwarf_filesrc(files, value, nullptr, nullptr));
  }
}

void CollectFunctions(Dwarf_Die* parent, std::vector<FunctionRange>* out) {
  Dwarf_Die child;
  if (dwarf_child(parent, &child) != 0) return;
  do {
    switch (dwarf_tag(&child)) {
      case DW_TAG_namespace:
      case DW_TAG_class_type:
      case DW_TAG_structure_type:
      case DW_TAG_union_type:
        CollectFunctions(&child, out);
        break;
      case DW_TAG_subprogram:
      case DW_TAG_entry_point: {
        Dwarf_Addr base, low, high;
        for (ptrdiff_t it = 0; (it = dwarf_ranges(&child, it, &base, &low, &high)) > 0;) {
          out->push_back({low, high, child});
        }
        break;
      }
      default:
        break;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

void FindScopes(Dwarf_Die* parent, Dwarf_Addr addr, std::vector<Dwarf_Die>* path) {
  Dwarf_Die child;
  if (dwarf_child(parent, &child) != 0) return;
  do {
    const int tag = dwarf_tag(&child);
    if ((tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block ||
         tag == DW_TAG_try_block || tag == DW_TAG_catch_block) &&
        dwarf_haspc(&child, addr) == 1) {
      path->push_back(child);
      return FindScopes(&path->back(), addr, path);
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

std::vector<UnitRange> UnitRanges(Dwfl_Module* mod) {
  std::vector<UnitRange> out;
  Dwarf_Addr bias = 0;
  for (Dwarf_Die* cu = nullptr; (cu = dwfl_module_nextcu(mod, cu, &bias)) != nullptr;) {
    Dwarf_Addr base = 0, low = 0, high = 0;
    for (ptrdiff_t at = 0; (at = dwarf_ranges(cu, at, &base, &low, &high)) > 0;) {
      if (low < high) out.push_back({low, high, cu});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const UnitRange& a, const UnitRange& b) { return a.low < b.low; });
  return out;
}

Dwarf_Die* UnitAt(const std::vector<UnitRange>& ranges, Dwarf_Addr addr) {
  // Units' ranges do not overlap (but for code the linker discarded, which
  // it leaves at address 0): the nearest range that starts at or below addr.
  auto it = std::upper_bound(ranges.begin(), ranges.end(), addr,
                             [](Dwarf_Addr a, const UnitRange& r) { return a < r.low; });
  if (it == ranges.begin() || addr >= std::prev(it)->high) return nullptr;
  return std::prev(it)->unit;
}

}  // namespace lockprof::agent
