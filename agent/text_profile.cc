#include "lockprof/agent/text_profile.h"

#include <cinttypes>
#include <cstdio>

namespace lockprof::agent {

void WriteTextProfile(const ResolvedProfile& rp, std::ostream& out) {
  out << rp.info->legacy_header << "\n";
  out << "cycles/second=1000000000\n";
  if (rp.info->legacy_has_period) out << "sampling period=" << rp.period << "\n";
  char buf[64];
  for (const ResolvedSample& s : rp.samples) {
    out << s.values[1] << " " << s.values[0] << " @";
    for (uintptr_t ret : s.return_addresses) {
      std::snprintf(buf, sizeof buf, " %#" PRIxPTR, ret);
      out << buf;
    }
    out << "\n";
    for (int li : s.locations) {
      const ResolvedLocation& loc = rp.locations[size_t(li)];
      std::snprintf(buf, sizeof buf, "#\t%#" PRIxPTR, loc.address);
      if (loc.frames.empty()) out << buf << "\n";
      for (const SourceFrame& f : loc.frames) {
        out << buf << "\t" << f.function << "\t" << f.file << ":" << f.line << "\n";
      }
    }
    out << "\n";
  }
}

}  // namespace lockprof::agent
