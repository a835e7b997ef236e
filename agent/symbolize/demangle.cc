#include "lockprof/agent/symbolize/demangle.h"

#include <cxxabi.h>

#include <cctype>
#include <cstdint>
#include <cstdlib>

#include "absl/debugging/internal/demangle.h"
#include "lockprof/agent/base/strings.h"

namespace lockprof::agent {
namespace {

// ---------------------------------------------------------------------------
// Names.

bool IsIdentChar(char c) { return isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// True if `word` stands alone at s[i] (not part of a longer identifier).
bool WordAt(std::string_view s, size_t i, std::string_view word) {
  return s.substr(i, word.size()) == word && (i == 0 || !IsIdentChar(s[i - 1])) &&
         (i + word.size() == s.size() || !IsIdentChar(s[i + word.size()]));
}

// True if `tail` (what follows a parameter list) holds only qualifiers.
bool OnlyQualifiers(std::string_view tail) {
  while (!tail.empty()) {
    if (tail.front() == ' ') {
      tail.remove_prefix(1);
      continue;
    }
    const size_t end = std::min(tail.find(' '), tail.size());
    const std::string_view word = tail.substr(0, end);
    if (word != "const" && word != "volatile" && word != "&" && word != "&&" &&
        word != "noexcept" && word != "transaction_safe") {
      return false;
    }
    tail.remove_prefix(end);
  }
  return true;
}

// The '(' that the ')' at s[close] closes, or npos.
size_t MatchingOpen(std::string_view s, size_t close) {
  int depth = 0;
  for (size_t i = close + 1; i-- > 0;) {
    if (s[i] == ')') {
      ++depth;
    } else if (s[i] == '(' && --depth == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

// The first '*' or '&' of `s` outside <>, (), [] and {}, before any
// bracket opens at the top level but '<' (a member pointer's class may be a
// template: "ns::B<int*>::*"); npos if none.
size_t PointerOutsideBrackets(std::string_view s) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '<') {
      ++depth;
    } else if (c == '>') {
      --depth;
    } else if (depth == 0 && (c == '(' || c == '[' || c == '{')) {
      return std::string_view::npos;
    } else if (depth == 0 && (c == '*' || c == '&')) {
      return i;
    }
  }
  return std::string_view::npos;
}

// "void ns::F<int>(int) const [clone .cold]" -> "ns::F<int>".
std::string StripSignature(std::string_view s) {
  while (EndsWith(s, "]")) {  // GCC clones: " [clone .isra.0] [clone .cold]"
    const size_t clone = s.rfind(" [clone ");
    if (clone == std::string_view::npos) break;
    s = s.substr(0, clone);
  }
  // The parameter list: the parenthesis matching the last ')', when only
  // qualifiers follow it. Scanning backwards keeps "operator()" and
  // "{lambda()#1}" intact.
  const size_t close = s.rfind(')');
  if (close != std::string_view::npos && OnlyQualifiers(s.substr(close + 1))) {
    const size_t open = MatchingOpen(s, close);
    if (open != std::string_view::npos && open > 0) s = s.substr(0, open);
  }
  // A function returning a pointer or reference to a function or an array
  // is written around its name: "void (*ns::get<int>())(int)", now
  // "void (*ns::get<int>())"; "int (&ns::row())[3]". The name is inside.
  while (EndsWith(s, "]") && s.rfind('[') != std::string_view::npos) {
    s = s.substr(0, s.rfind('['));
    while (EndsWith(s, " ")) s.remove_suffix(1);
  }
  if (EndsWith(s, ")")) {
    const size_t open = MatchingOpen(s, s.size() - 1);
    if (open != std::string_view::npos && open > 0 && s[open - 1] == ' ') {
      std::string_view inner = s.substr(open + 1, s.size() - open - 2);
      // "*", "&", "&&", or "Class::*" (a member pointer) before the name.
      const size_t declarator = PointerOutsideBrackets(inner);
      if (declarator != std::string_view::npos) {
        inner.remove_prefix(declarator);
        while (!inner.empty() &&
               (inner.front() == '*' || inner.front() == '&' || inner.front() == ' ')) {
          inner.remove_prefix(1);
        }
        if (!inner.empty()) return StripSignature(inner);
      }
    }
  }
  // The return type, which template instances spell out (and the "virtual
  // thunk to" of thunks): everything up to the last space outside brackets. Stops at "operator",
  // whose name may contain spaces ("operator new", "operator unsigned long") and brackets.
  size_t name_start = 0;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (depth == 0 && WordAt(s, i, "operator")) break;
    const char c = s[i];
    if (c == '(' || c == '<' || c == '[' || c == '{') {
      ++depth;
    } else if (c == ')' || c == '>' || c == ']' || c == '}') {
      --depth;
    } else if (c == ' ' && depth == 0) {
      name_start = i + 1;
    }
  }
  return std::string(s.substr(name_start));
}

// A demangled name longer than this is not kept (profiles and the
// symbolizer's cache hold every name they meet).
constexpr size_t kMaxFunctionName = 4096;

// __cxa_demangle runs only where its output is known to stay under this.
// It has no bound of its own: with back-references, a 200-character name
// demangles to hundreds of megabytes (each level of nesting doubles it),
// and any library in the process can bring such a symbol.
constexpr size_t kMaxFullDemangling = size_t{1} << 24;

// An upper bound on the length of __cxa_demangle's output for `mangled`,
// without running it: each character prints at most 40 (the longest
// abbreviation, "Ss", prints "std::basic_string<char, std::char_traits<char>,
// std::allocator<char> >"), and each back-reference (S<seq>_ to a
// substitution, T<n>_ to a template argument) at most all that was printed
// before it, which contains the text it refers to. A pack expansion (Dp of
// a type, sp of an expression) prints its pattern once per element of the
// pack: from there on, everything counts that many times over (each nested
// expansion multiplies again; the bound does not know where a pattern
// ends). A pack's elements are listed, a character at least each, in an
// argument pack (J...E) of the name, so there are fewer than the characters
// that follow the first non-empty one, and none without one. Without that,
// 100 characters of nested expansions (each level's pattern naming the
// level before) demangled to gigabytes under a bound of 11 MB; with it,
// about 1 in 400 names of a C++ program (std::_Rb_tree's emplace and the
// like) gets Abseil's shorter form. Text that only looks like a
// back-reference, a pack or an expansion (inside an identifier) makes the
// bound looser, never wrong. Saturates at SIZE_MAX.
size_t DemangledLengthBound(std::string_view mangled) {
  size_t pack = 1;  // The most elements a pack may have.
  for (size_t i = 0; i + 1 < mangled.size(); ++i) {
    if (mangled[i] == 'J' && mangled[i + 1] != 'E') {
      pack = mangled.size() - i - 1;
      break;
    }
  }
  size_t bound = 0;
  size_t times = 1;  // How often what comes next may be printed.
  auto sat_mul = [](size_t a, size_t b) {
    size_t out;
    return __builtin_mul_overflow(a, b, &out) ? SIZE_MAX : out;
  };
  auto add = [&](size_t n) {
    n = sat_mul(n, times);
    bound = bound > SIZE_MAX - n ? SIZE_MAX : bound + n;
  };
  for (size_t i = 0; i < mangled.size();) {
    const char c = mangled[i];
    if ((c == 'D' || c == 's') && i + 1 < mangled.size() && mangled[i + 1] == 'p') {
      times = sat_mul(times, pack);
      i += 2;
      continue;
    }
    size_t end = i + 1;
    if (c == 'S') {
      while (end < mangled.size() && (isdigit(static_cast<unsigned char>(mangled[end])) ||
                                      isupper(static_cast<unsigned char>(mangled[end])))) {
        ++end;
      }
    } else if (c == 'T') {
      while (end < mangled.size() && isdigit(static_cast<unsigned char>(mangled[end]))) ++end;
    }
    if ((c == 'S' || c == 'T') && end < mangled.size() && mangled[end] == '_') {
      add(bound);  // A back-reference: at most all printed so far.
      i = end + 1;
      continue;
    }
    add(40);
    ++i;
  }
  return bound;
}

}  // namespace

std::string StripCloneSuffix(std::string_view s) {
  const size_t dot = s.find('.', 1);
  if (dot == std::string_view::npos) return std::string(s);
  for (std::string_view kind : {"cold", "part", "isra", "constprop", "lto_priv", "localalias"}) {
    if (WordAt(s, dot + 1, kind)) return std::string(s.substr(0, dot));
  }
  return std::string(s);
}

size_t DemangleDataName(std::string_view s, char* out, size_t cap) {
  if (s.substr(0, 2) != "_Z") return 0;
  s.remove_prefix(2);
  if (!s.empty() && s.front() == 'L') s.remove_prefix(1);  // Internal linkage.
  const bool nested = !s.empty() && s.front() == 'N';
  if (nested) s.remove_prefix(1);
  size_t len = 0;
  bool closed = !nested;
  // <source-name>s: <length><identifier>, joined with "::".
  for (bool first = true; !s.empty(); first = false) {
    if (nested && s.front() == 'E' && !first) {
      s.remove_prefix(1);
      closed = true;
      break;
    }
    if (!first && !nested) return 0;  // Something follows a plain name.
    size_t n = 0, digits = 0;
    while (digits < s.size() && isdigit(static_cast<unsigned char>(s[digits])) && n < 4096) {
      n = n * 10 + size_t(s[digits++] - '0');
    }
    if (digits == 0 || n == 0 || digits + n > s.size()) return 0;
    std::string_view id = s.substr(digits, n);
    s.remove_prefix(digits + n);
    for (char c : id) {
      if (!IsIdentChar(c)) return 0;
    }
    if (id == "_GLOBAL__N_1") id = "(anonymous namespace)";
    const size_t need = (first ? 0 : 2) + id.size();
    if (len + need > cap) return 0;
    if (!first) {
      out[len++] = ':';
      out[len++] = ':';
    }
    id.copy(out + len, id.size());
    len += id.size();
  }
  return closed && s.empty() ? len : 0;
}

std::string PrettyFunctionName(std::string_view symbol) {
  if (symbol.substr(0, 2) != "_Z") return StripCloneSuffix(symbol);
  const std::string mangled(symbol);
  if (DemangledLengthBound(mangled) <= kMaxFullDemangling) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
    std::string out = status == 0 && demangled != nullptr ? StripSignature(demangled) : "";
    free(demangled);
    if (!out.empty() && out.size() <= kMaxFunctionName) return out;
    if (status != 0 && status != -1) return mangled;  // Not a mangled name.
  }
  // Abseil's demangler writes into a fixed buffer and bounds its own work;
  // its names omit template arguments ("std::vector<>::push_back").
  char buf[kMaxFunctionName + 1];
  if (absl::debugging_internal::Demangle(mangled.c_str(), buf, sizeof buf)) {
    return StripSignature(buf);
  }
  return mangled;
}

}  // namespace lockprof::agent
