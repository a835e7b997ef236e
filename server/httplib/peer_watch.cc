#include "lockprof/server/httplib/peer_watch.h"

#include <poll.h>

namespace lockprof::server {

std::function<bool()> PeerGoneCheck(int socket) {
  return [socket] {
    if (socket < 0) return false;
    pollfd p{socket, POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  };
}

}  // namespace lockprof::server
