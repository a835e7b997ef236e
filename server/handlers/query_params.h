// The query parameters of /debug/pprof/, read as Go's net/http/pprof reads
// them (the handlers answer malformed ones with Go's error replies).
#ifndef LOCKPROF_SERVER_HANDLERS_QUERY_PARAMS_H_
#define LOCKPROF_SERVER_HANDLERS_QUERY_PARAMS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace lockprof::server {

// ?debug= of a profile: 0, 1 or 2; nullopt for anything else.
std::optional<int> ParseDebugParam(std::string_view value);

// ?seconds= of a delta window: a positive base-10 integer; nullopt for
// anything else.
std::optional<int64_t> ParseSecondsParam(std::string_view value);

// A parameter Go reads with strconv.Atoi, ignoring its error: the integer,
// the nearest int64 if it is one out of range, or 0 if `value` is not one.
int64_t AtoiOrZero(std::string_view value);

// The parameters of a raw query string ("a=1&b=x%20y", without the '?'),
// decoded as Go's url.ParseQuery does ('+' is a space, %XX a byte; a
// malformed escape is kept as written). A repeated key keeps every value,
// in order; a key without '=' has the value "".
std::multimap<std::string, std::string> DecodeQuery(std::string_view raw);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_QUERY_PARAMS_H_
