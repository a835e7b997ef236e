// Encoding a ResolvedProfile as pprof's profile.proto, gzipped — the format
// `go tool pprof`, Pyroscope and Grafana read. Field by field it matches what
// Go's runtime/pprof writes for its mutex and block profiles.
#ifndef LOCKPROF_AGENT_PPROF_PPROF_ENCODER_H_
#define LOCKPROF_AGENT_PPROF_PPROF_ENCODER_H_

#include <string>

#include "lockprof/agent/pprof/resolved_profile.h"

namespace lockprof::agent {

// Serialized, uncompressed profile.proto bytes.
std::string EncodePprof(const ResolvedProfile& profile);

// Gzip (level 1, as Go's BestSpeed) of `data`.
std::string Gzip(const std::string& data);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_PPROF_PPROF_ENCODER_H_
