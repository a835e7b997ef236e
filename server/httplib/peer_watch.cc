#include "lockprof/server/httplib/peer_watch.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <memory>

namespace lockprof::server {

namespace {

struct Endpoint {
  std::string addr;
  int port = -1;
};

// getsockname/getpeername of `fd` as (numeric host, port); false for
// anything that is not a connected IP socket.
bool ReadEndpoint(int fd, bool peer, Endpoint* out) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  if ((peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len)) != 0) return false;
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) return false;
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getnameinfo(sa, len, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) !=
      0) {
    return false;
  }
  out->addr = host;
  out->port = std::atoi(port);
  return true;
}

int FindSocket(const Endpoint& local, const Endpoint& remote) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (dirent* e = readdir(dir)) {
    char* end;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || end == e->d_name || fd == dirfd(dir)) continue;
    Endpoint l, r;
    if (ReadEndpoint(int(fd), false, &l) && l.port == local.port && l.addr == local.addr &&
        ReadEndpoint(int(fd), true, &r) && r.port == remote.port && r.addr == remote.addr) {
      found = int(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

struct Watch {
  Endpoint local, remote;
  bool looked = false;
  int fd = -1;

  bool Gone() {
    if (!looked) {
      looked = true;
      fd = FindSocket(local, remote);
    }
    if (fd < 0) return false;
    pollfd p{fd, POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }
};

}  // namespace

std::function<bool()> PeerGoneCheck(std::string local_addr, int local_port, std::string remote_addr,
                                    int remote_port) {
  auto w = std::make_shared<Watch>();
  w->local = {std::move(local_addr), local_port};
  w->remote = {std::move(remote_addr), remote_port};
  return [w] { return w->Gone(); };
}

}  // namespace lockprof::server
