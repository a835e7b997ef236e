#include "lockprof/agent/symbolize/demangle.h"

#include <cxxabi.h>

#include <cctype>
#include <cstdlib>

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
    int depth = 0;
    for (size_t i = close + 1; i-- > 0;) {
      if (s[i] == ')') {
        ++depth;
      } else if (s[i] == '(' && --depth == 0) {
        if (i > 0) s = s.substr(0, i);
        break;
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
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  std::string out = status == 0 && demangled != nullptr ? StripSignature(demangled) : mangled;
  free(demangled);
  return out;
}

}  // namespace lockprof::agent
