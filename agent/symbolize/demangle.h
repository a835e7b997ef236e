// Turning linker symbols into the function names profiles show.
#ifndef LOCKPROF_AGENT_SYMBOLIZE_DEMANGLE_H_
#define LOCKPROF_AGENT_SYMBOLIZE_DEMANGLE_H_

#include <string>
#include <string_view>

namespace lockprof::agent {

// Demangles `symbol` (Itanium C++ ABI) and reduces it to the qualified name
// pprof shows: no parameter list, no cv/ref qualifiers, no return type (which
// template instances carry), no GCC clone suffix.
//   "_ZNK2ns5Class6MethodEi"        -> "ns::Class::Method"
//   "_ZZ4mainENKUlvE_clEv"          -> "main::{lambda()#1}::operator()"
//   "_Z3fooIiEvT_.cold"             -> "foo<int>"
//   "memcpy", "helper.constprop.0"  -> "memcpy", "helper"
// Symbols that do not demangle are returned as they are (minus a clone
// suffix). Pure; thread-safe.
std::string PrettyFunctionName(std::string_view symbol);

// "foo.constprop.0.isra.0" -> "foo": drops GCC's clone suffixes.
std::string StripCloneSuffix(std::string_view symbol);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_SYMBOLIZE_DEMANGLE_H_
