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
// suffix). Bounded: a symbol whose full demangling could be large (each
// back-reference may double it: a 200-character symbol can demangle to
// gigabytes), or whose name would exceed 4 KiB, gets Abseil's demangler's
// name instead, which omits template arguments ("std::vector<>::push_back").
// Pure; thread-safe.
std::string PrettyFunctionName(std::string_view symbol);

// The name of a namespace-scope or class-static variable, demangled into
// out[0, cap) without allocating (for code that may run inside the
// application's own malloc): "_ZN2ns5Class3mu_E" -> "ns::Class::mu_",
// "_ZL4g_mu" -> "g_mu", "_ZN12_GLOBAL__N_14g_muE" -> "(anonymous
// namespace)::g_mu", as PrettyFunctionName gives them. Returns the length
// written (no terminator), or 0 for any other symbol (a function-local
// static, a template's member, ...) or if `cap` is too small: then use
// PrettyFunctionName. Pure; thread-safe.
size_t DemangleDataName(std::string_view symbol, char* out, size_t cap);

// "foo.constprop.0.isra.0" -> "foo": drops GCC's clone suffixes.
std::string StripCloneSuffix(std::string_view symbol);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_SYMBOLIZE_DEMANGLE_H_
