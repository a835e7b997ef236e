// How many requests RequestLimitStream (request_limit_stream.h) has cut, in
// a header of their own: /metrics serves them, and its handler stays free of
// cpp-httplib's header.
#ifndef LOCKPROF_SERVER_HTTPLIB_REQUEST_LIMIT_COUNTERS_H_
#define LOCKPROF_SERVER_HTTPLIB_REQUEST_LIMIT_COUNTERS_H_

#include <cstdint>

namespace lockprof::server {

// Requests cut by either limit since the process started, by every stream.
uint64_t RequestHeadsCut();
uint64_t RequestBodiesCut();

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_REQUEST_LIMIT_COUNTERS_H_
