// Noticing that the client of a request has gone away, for handlers that
// wait (?seconds=N).
//
// httplib 0.11 gives a handler neither its socket nor any way to learn that
// the client disconnected (later versions added is_connection_closed), but
// it does give both ends' addresses. While a request is being handled its
// connection stays open, so the connection's socket is the one descriptor of
// this process whose local and peer addresses are those two.
#ifndef LOCKPROF_SERVER_HTTPLIB_PEER_WATCH_H_
#define LOCKPROF_SERVER_HTTPLIB_PEER_WATCH_H_

#include <functional>
#include <string>

namespace lockprof::server {

// Returns a check that becomes true once the TCP peer remote_addr:remote_port
// of local_addr:local_port (numeric addresses, as getnameinfo writes them)
// has closed or reset the connection. A client that half-closes after
// sending its request counts as gone, as it does for Go's server. The
// socket is found on the first call (one scan of /proc/self/fd, a few
// microseconds per descriptor); if none matches, the check stays false.
// Each later call is one poll(2) with no timeout.
//
// Call the check only while the request is being handled: after that the
// descriptor may be closed and reused.
std::function<bool()> PeerGoneCheck(std::string local_addr, int local_port, std::string remote_addr,
                                    int remote_port);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_PEER_WATCH_H_
