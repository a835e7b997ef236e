// Small string helpers shared across the agent. (Abseil's absl::StartsWith
// and EndsWith take absl::string_view, which Debian's Abseil does not alias to
// std::string_view: this one takes the standard type.)
#ifndef LOCKPROF_AGENT_BASE_STRINGS_H_
#define LOCKPROF_AGENT_BASE_STRINGS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "lockprof/agent/base/utf8.h"

namespace lockprof::agent {

// Whether `s` starts with `prefix`.
inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Whether `s` ends with `suffix`.
inline bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Two lower-case hex digits per byte of bytes[0, n), as GNU build-ids are
// spelled (pprof's Mapping.build_id, elfutils): {0x0a, 0xff} -> "0aff".
inline std::string HexEncode(const void* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const auto* b = static_cast<const unsigned char*>(bytes);
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[b[i] >> 4];
    out[2 * i + 1] = kDigits[b[i] & 0xf];
  }
  return out;
}

// Appends `s` as a JSON string. Function and lock names are arbitrary bytes
// from the program: control characters are escaped, and bytes that are not
// UTF-8 become U+FFFD (RFC 8259 wants UTF-8; strict parsers reject the rest).
inline void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (n == 0) {
      out->append(kReplacementCharacter);
      ++i;
      continue;
    }
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      out->append("\\u00");
      out->push_back(kDigits[u >> 4]);
      out->push_back(kDigits[u & 0xf]);
    } else {
      out->append(s.substr(i, n));
    }
    i += n;
  }
  out->push_back('"');
}

// Emits `name` in double quotes for a line of text, one byte at a time
// through emit(char): a quote or backslash is escaped, and control
// characters (C0, DEL, C1) and bytes that are not UTF-8 become \xNN, so
// that a name can neither end the quotes nor the line (a name with a
// newline would otherwise forge lines of a report or a log) nor drive the
// terminal of whoever reads it. Allocation-free with an emit that is.
template <typename Emit>
void EmitQuotedName(std::string_view name, Emit emit) {
  static constexpr char kDigits[] = "0123456789abcdef";
  emit('"');
  for (size_t i = 0; i < name.size();) {
    bool control;
    const size_t n = Utf8Character(name, i, &control);
    for (size_t j = i; j < i + n; ++j) {
      const char c = name[j];
      const auto u = static_cast<unsigned char>(c);
      if (control) {
        emit('\\');
        emit('x');
        emit(kDigits[u >> 4]);
        emit(kDigits[u & 0xf]);
      } else {
        if (c == '"' || c == '\\') emit('\\');
        emit(c);
      }
    }
    i += n;
  }
  emit('"');
}

inline std::string QuotedName(std::string_view name) {
  std::string out;
  EmitQuotedName(name, [&out](char c) { out.push_back(c); });
  return out;
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_BASE_STRINGS_H_
