#include "lockprof/server/handlers/symbol_handlers.h"

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_map>

#include "lockprof/agent/pprof/resolved_profile.h"
#include "lockprof/agent/symbolize/symbolizer.h"
#include "lockprof/server/handlers/in_flight.h"

namespace lockprof::server {

namespace {

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

// Go's strconv.ParseUint(s, 0, 64), returning 0 on any error as Go's
// Symbol does (0 is then skipped).
uint64_t ParseAddress(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  } else if (s.size() > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
    base = 8;
    s.remove_prefix(2);
  } else if (s.size() > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
    base = 2;
    s.remove_prefix(2);
  } else if (s.size() > 1 && s[0] == '0') {
    base = 8;
    s.remove_prefix(1);
  }
  uint64_t v = 0;
  for (char c : s) {
    const int d = DigitValue(c);
    if (d >= base || v > (UINT64_MAX - uint64_t(d)) / uint64_t(base)) return 0;
    v = v * uint64_t(base) + uint64_t(d);
  }
  return v;
}

// The name pprof should show for `pc`, or "" if nothing covers it. The
// client chose pc: it must not grow the symbolizer's cache.
std::string FunctionAt(uint64_t pc) {
  // The frame a full table's lost samples are charged to, at its return
  // address or its call address (pprof asks for either).
  if (pc == agent::kLostSamplesReturnAddress || pc == agent::kLostSamplesReturnAddress - 1) {
    return agent::kLostSamplesFrame;
  }
  const std::vector<agent::SourceFrame> frames =
      agent::Symbolizer::Global().SymbolizeWithoutCaching(uintptr_t(pc));
  if (frames.empty()) return "";
  for (const agent::SourceFrame& f : frames) {
    if (!agent::IsInternalFrame(f.function)) return f.function;
  }
  return frames.front().function;
}

}  // namespace

Response HandleSymbol(const Request& req) {
  static std::atomic<int> answering{0};
  const InFlight answer(answering, kMaxSymbolAnswers);
  if (!answer.admitted()) {
    Response r = ErrorResponse(503, "too many symbol requests at once (at most " +
                                        std::to_string(kMaxSymbolAnswers) + "): try again");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }
  Response r;
  r.body = "num_symbols: 1\n";
  const std::string_view input = req.method == "POST" ? req.body : req.query;
  // A request may repeat an address many times (a 1 MiB body holds ~50,000
  // copies of one), and an uncached one is symbolized from scratch each
  // time: the names found are remembered for the rest of the request, up to
  // a bound, so that no request makes the handler hold much memory.
  constexpr size_t kMemoEntries = 4096, kMemoBytes = 256 << 10;
  std::unordered_map<uint64_t, std::string> memo;
  size_t memo_bytes = 0;
  size_t lookups = 0;
  size_t begin = 0;
  while (begin <= input.size()) {
    size_t end = input.find('+', begin);
    if (end == std::string_view::npos) end = input.size();
    const uint64_t pc = ParseAddress(input.substr(begin, end - begin));
    if (pc != 0) {
      std::string name;
      if (const auto it = memo.find(pc); it != memo.end()) {
        name = it->second;
      } else {
        // An uncached address takes 50-100 us, and a 1 MiB body holds
        // about 50,000: such a request runs for seconds. Every 64 lookups
        // (a few milliseconds) it gives up if its client has gone or the
        // server is stopping, as a ?seconds= window does, so that it keeps
        // neither a stop nor the process's exit waiting, nor one of the
        // kMaxSymbolAnswers slots from the next client.
        if (++lookups % 64 == 0) {
          if (req.stopping && req.stopping()) {
            return ErrorResponse(503, "the server is stopping: no symbols");
          }
          if (req.cancelled && req.cancelled()) return ErrorResponse(500, "context canceled");
        }
        name = FunctionAt(pc);
        if (memo.size() < kMemoEntries && memo_bytes + name.size() <= kMemoBytes) {
          memo_bytes += name.size();
          memo.emplace(pc, name);
        }
      }
      if (!name.empty()) {
        char addr[32];
        std::snprintf(addr, sizeof addr, "%#" PRIx64, pc);
        if (r.body.size() + std::strlen(addr) + name.size() + 2 > kMaxSymbolAnswer) {
          return ErrorResponse(413, "the answer would exceed " +
                                        std::to_string(kMaxSymbolAnswer >> 20) +
                                        " MiB: ask for fewer addresses at a time");
        }
        r.body.append(addr).append(" ").append(name).append("\n");
      }
    }
    begin = end + 1;
  }
  return r;
}

Response HandleCmdline() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  Response r;
  r.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  // The kernel ends every argument with a NUL; Go joins them with one.
  if (!r.body.empty() && r.body.back() == '\0') r.body.pop_back();
  return r;
}

}  // namespace lockprof::server
