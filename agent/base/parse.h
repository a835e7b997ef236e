// Parsing the text lockprof reads from its environment and its requests:
// integers and host:port addresses, strictly (nothing is guessed).
#ifndef LOCKPROF_AGENT_BASE_PARSE_H_
#define LOCKPROF_AGENT_BASE_PARSE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lockprof::agent {

// Parses a base-10 integer in [min, max]. Returns nullopt for anything else
// (empty, trailing garbage, overflow, out of range).
std::optional<int64_t> ParseInt(std::string_view text, int64_t min, int64_t max);

// Splits "host:port" ("127.0.0.1:6060", "[::1]:6060", ":6060" meaning
// 127.0.0.1). Returns false, with a message in *error, if malformed.
bool ParseHostPort(std::string_view text, std::string* host, int* port, std::string* error);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_BASE_PARSE_H_
