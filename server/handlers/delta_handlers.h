// Delta profiles over HTTP: Go's ?seconds=N on every profile, and
// godeltaprof's /debug/pprof/delta_<profile> endpoints (see
// agent/pprof/deltas.h for how the differences are computed).
#ifndef LOCKPROF_SERVER_HANDLERS_DELTA_HANDLERS_H_
#define LOCKPROF_SERVER_HANDLERS_DELTA_HANDLERS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "lockprof/agent/tables/profile_tables.h"
#include "lockprof/server/handlers/http_types.h"
#include "lockprof/server/handlers/pprof_handlers.h"

namespace lockprof::server {

// /debug/pprof/<profile>?seconds=<seconds> (seconds not empty), as Go's
// serveDeltaProfile: checks `seconds` (400 unless a positive base-10
// integer), the window against options.max_profile_seconds and the absence
// of `debug`, with Go's messages; then snapshots the profile, waits, and
// returns the difference: gzipped profile.proto, time_nanos = the end,
// duration_nanos = the window, samples that did not change left out, served
// as attachment "<profile>-delta".
//
// Blocks the calling thread for the window, waking every 100 ms to ask
// request.cancelled(); a cancelled request returns at once (500 "context
// canceled", as Go). At most options.max_open_windows at once (503 past
// them).
Response HandleDeltaWindow(const agent::ProfileInfo& profile, const std::string& seconds,
                           const Request& request, const PprofOptions& options);

// /debug/pprof/delta_<profile>: what the profile gained since the previous
// request to the same endpoint (the first: since the process started), as
// godeltaprof serves it: attachment "<profile>.pprof.gz". One tracker per
// profile for the life of the process; concurrent requests are serialised.
Response HandleDeltaScrape(const agent::ProfileInfo& profile);

// Sleeps `seconds`, waking every 100 ms to ask request.cancelled(), unless
// `max_open` windows (if above 0) with a limit are open already: each holds
// one of the built-in server's threads until it ends, and the rest are kept
// for every other request (a scrape of /metrics); a host's own server's
// windows (no limit) are not among them. Counted in ActiveDeltaWaits().
// Returns nothing once the window has elapsed; else the answer: 500
// "context canceled" (as Go) when cancelled first, 503 with Retry-After when
// there were too many windows. `start` (the window's first snapshot) runs
// once the window is let in, before the wait: a refused request copies
// nothing. Shared with the other handlers that serve windows (the
// contention page's JSON).
std::optional<Response> WaitOutWindow(int64_t seconds, const Request& request, int max_open,
                                      const std::function<void()>& start);

// Requests now waiting out a ?seconds= window.
int ActiveDeltaWaits();

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_DELTA_HANDLERS_H_
