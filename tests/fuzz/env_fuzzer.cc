// Fuzzes the parsers of lockprof's environment variables and flags:
// agent::ParseInt (every LOCKPROF_* number) and agent::ParseHostPort
// (LOCKPROF_ADMIN_ADDR, --addr). Beyond not crashing, each result is checked
// against what the contract in parse.h says it must be.
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lockprof/agent/base/parse.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "env_fuzzer: %s\n", what);
  __builtin_trap();  // A crash the fuzzer reports, with the input.
}

// The reference: one optional sign, then decimal digits only, value in range.
std::optional<int64_t> Reference(std::string_view text, int64_t min, int64_t max) {
  std::string_view digits = text;
  const bool plus = !digits.empty() && digits[0] == '+';
  if (plus) digits.remove_prefix(1);
  if (digits.empty() || text.size() > 20) return std::nullopt;
  if (plus && (digits[0] == '-' || digits[0] == '+')) return std::nullopt;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  if (digits[0] == '-' && digits.size() == 1) return std::nullopt;
  if (value < min || value > max) return std::nullopt;
  return value;
}

void CheckParseInt(std::string_view text, int64_t min, int64_t max) {
  if (lockprof::agent::ParseInt(text, min, max) != Reference(text, min, max)) {
    Fail("ParseInt disagrees with the reference");
  }
}

void CheckHostPort(std::string_view text) {
  std::string host, error;
  int port = -1;
  if (!lockprof::agent::ParseHostPort(text, &host, &port, &error)) {
    if (error.empty()) Fail("rejected without a message");
    return;
  }
  if (port < 0 || port > 65535) Fail("port out of range");
  if (host.empty() || host.find_first_of(" /?#[]") != std::string::npos) Fail("bad host");
  // What was accepted prints back to an address that parses the same.
  std::string again =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  std::string host2, error2;
  int port2 = -1;
  if (!lockprof::agent::ParseHostPort(again, &host2, &port2, &error2) || host2 != host ||
      port2 != port) {
    Fail("accepted address does not round-trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckParseInt(text, INT64_MIN, INT64_MAX);
  CheckParseInt(text, 0, 65535);
  CheckParseInt(text, -5, 5);
  CheckHostPort(text);
  return 0;
}
