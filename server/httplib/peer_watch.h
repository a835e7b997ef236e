// Noticing that the client of a request has gone away, for handlers that
// wait (?seconds=N) or work long (/debug/pprof/symbol).
//
// httplib 0.11 gives a handler no way to learn that the client disconnected
// (later versions added is_connection_closed); the bounded server's
// keep-alive loop knows the connection's socket (CurrentRequestSocket).
#ifndef LOCKPROF_SERVER_HTTPLIB_PEER_WATCH_H_
#define LOCKPROF_SERVER_HTTPLIB_PEER_WATCH_H_

#include <functional>

namespace lockprof::server {

// Returns a check that becomes true once the TCP peer of `socket` (< 0:
// none, and the check stays false) has closed or reset the connection. A
// client that half-closes after sending its request counts as gone, as it
// does for Go's server. Each call is one poll(2) with no timeout.
//
// Call the check only while the request is being handled: after that the
// descriptor may be closed and reused.
std::function<bool()> PeerGoneCheck(int socket);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_PEER_WATCH_H_
