// The debug=1 text form of a contention profile: Go's legacy format, which
// `go tool pprof` also parses.
//
//   --- mutex:
//   cycles/second=1000000000
//   sampling period=10
//   <delay> <count> @ 0x<ret> 0x<ret> ...
//   #	0x<pc>	<function>	<file>:<line>
//
// lockprof measures in nanoseconds, so "cycles" are nanoseconds and
// cycles/second is 1e9. Values are written unscaled (divided by the sampling
// period), because pprof's parser multiplies them by it: read back, they give
// exactly the protobuf profile's totals. Where the period changed while
// samples were recorded, the division uses the current period.
#ifndef LOCKPROF_AGENT_PPROF_TEXT_PROFILE_H_
#define LOCKPROF_AGENT_PPROF_TEXT_PROFILE_H_

#include <ostream>

#include "lockprof/agent/pprof/resolved_profile.h"

namespace lockprof::agent {

void WriteTextProfile(const ResolvedProfile& profile, std::ostream& out);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PPROF_TEXT_PROFILE_H_
