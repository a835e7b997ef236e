// /debug/lockprof/: a self-contained contention page (top locks, flame
// graphs of the contention profiles) and the JSON it reads its profiles
// from. The page is one HTML file with its script and style inline
// (server/page/), compiled into the library: it fetches nothing but this
// endpoint's own /metrics and /debug/lockprof/profile.json.
#ifndef LOCKPROF_SERVER_HANDLERS_CONTENTION_PAGE_H_
#define LOCKPROF_SERVER_HANDLERS_CONTENTION_PAGE_H_

#include <string>
#include <string_view>

#include "lockprof/agent/pprof/resolved_profile.h"
#include "lockprof/server/handlers/http_types.h"
#include "lockprof/server/handlers/pprof_handlers.h"

namespace lockprof::server {

// The page itself: "/debug/lockprof/". It carries no data, so the admin
// server serves it without the bearer token (a browser cannot send one on
// navigation); the page sends the token the user enters on its own fetches,
// which are checked as every other path is.
inline constexpr char kContentionPagePath[] = "/debug/lockprof/";

// Serves any path under /debug/lockprof/:
//  * /debug/lockprof/ (GET, HEAD): the page, text/html.
//  * /debug/lockprof/profile.json?name=<profile>[&seconds=N]: the profile
//    (cumulative, or what it gained over the next N seconds, as ?seconds=N
//    of /debug/pprof/) as JSON, see ProfileJson.
// A window blocks the calling thread as HandlePprof's does, within
// options.max_profile_seconds.
Response HandleContentionPage(const Request& request, const PprofOptions& options = {});

// A resolved profile as the page reads it:
//   {"profile":"mutex","types":[["contentions","count"],["delay","nanoseconds"]],
//    "duration_nanos":0,
//    "samples":[{"v":[1,2],"s":[leaf,...,root],"l":{"lock":"cache.main","shard":3}},...],
//    "funcs":["f",...]}
// "s" indexes "funcs", innermost frame first, inlined frames expanded;
// an address without a name is written as 0x<hex>. "l" holds the string
// labels as strings and the numeric ones (shard) as numbers, which pprof
// filters differently (-tagfocus=shard=3, not a regular expression). A lock
// without a name has no "lock"; one named "" has "lock":"" (pprof's reader
// drops an empty label: to it, neither has one).
std::string ProfileJson(const agent::ResolvedProfile& profile);

// The page's bytes (generated from server/page/ at build time).
std::string_view ContentionPageHtml();

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_CONTENTION_PAGE_H_
