// This process's sockets, found through /proc/self/fd: what the admin
// server's fork handler uses to recognise the server's sockets in a child,
// which httplib does not expose.
#ifndef LOCKPROF_SERVER_HTTPLIB_PROCESS_SOCKETS_H_
#define LOCKPROF_SERVER_HTTPLIB_PROCESS_SOCKETS_H_

#include <sys/socket.h>
#include <sys/types.h>

namespace lockprof::server {

// The local address of socket `fd`, if it is an IPv4 or IPv6 socket.
bool LocalAddress(int fd, sockaddr_storage* out);
// Whether socket `fd` is a TCP socket whose local address is `listener`'s:
// the listening socket itself, or a connection it accepted (which has the
// address the client reached; any of the family's when the listener is
// bound to a wildcard). A program's other sockets on the same port number
// are neither: UDP ones, or TCP ones bound to another address.
bool SharesListener(int fd, const sockaddr_storage& listener);

// In a forked child: closes this process's descriptors of a server's
// sockets, inherited from the parent: the TCP listening socket bound to
// `listener` (LocalAddress of it) and the connections it accepted. The
// program's other sockets on the same port number (UDP, or TCP on another
// address) stay open. close(), never shutdown(): the parent's descriptors
// of the same sockets keep working. Allocates nothing (for
// agent::OnForkChild handlers).
void CloseSocketsOfListener(const sockaddr_storage& listener);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_PROCESS_SOCKETS_H_
