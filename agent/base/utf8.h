// UTF-8 checks for the names lockprof writes out. Lock, thread, label and
// function names are bytes from the program, and every format they go to
// wants UTF-8: JSON (RFC 8259), the Prometheus text format, and
// profile.proto's string fields (proto3 parsers reject invalid UTF-8, and
// libprotobuf logs an error for each such string it serializes). Invalid
// bytes become U+FFFD, as Prometheus' own client libraries do.
#ifndef LOCKPROF_AGENT_BASE_UTF8_H_
#define LOCKPROF_AGENT_BASE_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace lockprof::agent {

inline constexpr char kReplacementCharacter[] = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid
// (overlong forms and surrogates included).
inline size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

inline bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// `s` with each byte that starts no valid sequence replaced by U+FFFD.
inline std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += kReplacementCharacter;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

// `s` made safe for one line of a log: control characters (C0, DEL, and C1
// such as U+009B, which terminals read as the start of an escape sequence)
// and bytes that start no valid sequence become \xNN, one per byte; the
// rest is kept. For text from elsewhere (a server's answer), whose newlines
// would forge log lines and whose ESC sequences would drive the terminal.
// The bytes of the character at s[i] (1 for a byte that starts no valid
// UTF-8 sequence), and in *control whether they are to be escaped: such a
// byte, a C0 control, DEL or a C1 control (U+0080-U+009F, which terminals
// also obey: U+009B starts an escape sequence).
inline size_t Utf8Character(std::string_view s, size_t i, bool* control) {
  const auto b = static_cast<unsigned char>(s[i]);
  const size_t n = Utf8SequenceLength(s, i);
  const bool c1 = n == 2 && b == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;
  *control = n == 0 || b < 0x20 || b == 0x7F || c1;
  return n == 0 ? 1 : n;
}

inline std::string EscapedForLog(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    bool control;
    const size_t n = Utf8Character(s, i, &control);
    if (control) {
      for (size_t j = i; j < i + n; ++j) {
        const auto e = static_cast<unsigned char>(s[j]);
        out += "\\x";
        out += kHex[e >> 4];
        out += kHex[e & 15];
      }
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

// The length of `s` cut to at most `limit` bytes: all of it if it fits,
// else the longest prefix that does not end inside a multi-byte character.
inline size_t Utf8PrefixBytes(std::string_view s, size_t limit) {
  if (s.size() <= limit) return s.size();
  size_t n = limit;
  // s[n] is the first byte left out: if it continues a sequence, so must
  // the bytes back to that sequence's first, which goes too.
  for (int k = 0; k < 3 && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80; ++k) {
    --n;
  }
  return n;
}

// How many bytes of the NUL-terminated `name` a buffer of `size` bytes
// keeps, its terminator included: all of them if they fit, else what
// Utf8PrefixBytes keeps. For the fixed name buffers of the recording path:
// no allocation.
inline size_t KeptNameBytes(const char* name, size_t size) {
  const size_t n = strnlen(name, size);
  return n < size ? n : Utf8PrefixBytes(std::string_view(name, size), size - 1);
}

// Copies what KeptNameBytes keeps of `name` to out[0, size), terminated.
inline void KeepName(const char* name, char* out, size_t size) {
  const size_t n = KeptNameBytes(name, size);
  std::memcpy(out, name, n);
  out[n] = '\0';
}

// Whether `kept` is what KeepName keeps of `name`.
inline bool SameKeptName(const char* kept, const char* name, size_t size) {
  const size_t n = KeptNameBytes(name, size);
  return std::memcmp(kept, name, n) == 0 && kept[n] == '\0';
}

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_BASE_UTF8_H_
