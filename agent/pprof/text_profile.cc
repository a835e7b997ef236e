#include "lockprof/agent/pprof/text_profile.h"

#include <cinttypes>
#include <cstdio>
#include <numeric>

#include "lockprof/agent/base/utf8.h"

namespace lockprof::agent {

void WriteTextProfile(const ResolvedProfile& rp, std::ostream& out) {
  out << rp.info->legacy_header << "\n";
  out << "cycles/second=1000000000\n";
  // pprof's legacy parser multiplies every value by "sampling period" (the
  // text format predates runtime scaling). Our values are already scaled, so
  // they are written divided by the period: `go tool pprof` then shows the
  // same totals as the protobuf profile. (Go >= 1.20 writes scaled values
  // *and* the period, which pprof scales twice.)
  // The period written is the largest divisor of the rate that divides
  // every value, so the division is exact: each value was scaled by the
  // rate in force when it was recorded, which may not be today's (divided
  // by today's and rounded, two contentions at rate 1 read as 0 at 1000).
  int64_t period = 1;
  if (rp.info->legacy_has_period && rp.period > 1) {
    period = rp.period;
    for (const ResolvedSample& s : rp.samples) {
      period = std::gcd(std::gcd(period, s.values[0]), s.values[1]);
      if (period == 1) break;
    }
  }
  if (rp.info->legacy_has_period) out << "sampling period=" << period << "\n";
  char buf[64];
  for (const ResolvedSample& s : rp.samples) {
    out << s.values[1] / period << " " << s.values[0] / period << " @";
    for (uintptr_t ret : s.return_addresses) {
      std::snprintf(buf, sizeof buf, " %#" PRIxPTR, ret);
      out << buf;
    }
    out << "\n";
    for (int li : s.locations) {
      const ResolvedLocation& loc = rp.locations[size_t(li)];
      std::snprintf(buf, sizeof buf, "#\t%#" PRIxPTR, loc.address);
      if (loc.frames.empty()) out << buf << "\n";
      // Names with their control bytes escaped: one with a newline (a
      // plugin's symbol, a DWARF file name) would otherwise start a line of
      // its own, which the legacy parser reads as a sample. (Go writes its
      // own names raw: they cannot hold one.)
      for (const SourceFrame& f : loc.frames) {
        out << buf << "\t" << EscapedForLog(f.function) << "\t" << EscapedForLog(f.file) << ":"
            << f.line << "\n";
      }
    }
    out << "\n";
  }
}

}  // namespace lockprof::agent
