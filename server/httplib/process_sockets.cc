#include "lockprof/server/httplib/process_sockets.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace lockprof::server {

bool LocalAddress(int fd, sockaddr_storage* out) {
  socklen_t len = sizeof *out;
  return getsockname(fd, reinterpret_cast<sockaddr*>(out), &len) == 0 &&
         (out->ss_family == AF_INET || out->ss_family == AF_INET6);
}

bool SharesListener(int fd, const sockaddr_storage& listener) {
  int type = 0;
  socklen_t type_len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0 || type != SOCK_STREAM) {
    return false;
  }
  sockaddr_storage local{};
  if (!LocalAddress(fd, &local) || local.ss_family != listener.ss_family) return false;
  if (listener.ss_family == AF_INET) {
    const auto& l = reinterpret_cast<const sockaddr_in&>(listener);
    const auto& a = reinterpret_cast<const sockaddr_in&>(local);
    return a.sin_port == l.sin_port &&
           (l.sin_addr.s_addr == htonl(INADDR_ANY) || a.sin_addr.s_addr == l.sin_addr.s_addr);
  }
  const auto& l = reinterpret_cast<const sockaddr_in6&>(listener);
  const auto& a = reinterpret_cast<const sockaddr_in6&>(local);
  return a.sin6_port == l.sin6_port &&
         (IN6_IS_ADDR_UNSPECIFIED(&l.sin6_addr) ||
          std::memcmp(&a.sin6_addr, &l.sin6_addr, sizeof a.sin6_addr) == 0);
}

// getdents64 on /proc/self/fd with a buffer on the stack, rather than
// opendir, which allocates.
void CloseSocketsOfListener(const sockaddr_storage& listener) {
  const int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(8) char buf[4096];
  for (;;) {
    const long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      const auto* e = reinterpret_cast<const dirent64*>(buf + at);
      at += e->d_reclen;
      char* end;
      const long fd = std::strtol(e->d_name, &end, 10);
      if (*end != '\0' || end == e->d_name || fd == dir) continue;
      struct stat st;
      if (fstat(int(fd), &st) == 0 && S_ISSOCK(st.st_mode) && SharesListener(int(fd), listener)) {
        close(int(fd));
      }
    }
  }
  close(dir);
}

}  // namespace lockprof::server
