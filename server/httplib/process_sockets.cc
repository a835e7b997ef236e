#include "lockprof/server/httplib/process_sockets.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace lockprof::server {

ino_t SocketInode(int fd) {
  char path[64], link[64];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  const ssize_t n = readlink(path, link, sizeof link - 1);
  if (n <= 0) return 0;
  link[n] = '\0';
  unsigned long long inode = 0;
  return std::sscanf(link, "socket:[%llu]", &inode) == 1 ? ino_t(inode) : 0;
}

int LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return -1;
}

int ConnectedPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  return LocalPort(fd);
}

// getdents64 on /proc/self/fd with a buffer on the stack, rather than
// opendir, which allocates.
void CloseSocketsOnPort(int port) {
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
      if (fstat(int(fd), &st) == 0 && S_ISSOCK(st.st_mode) && LocalPort(int(fd)) == port) {
        close(int(fd));
      }
    }
  }
  close(dir);
}

}  // namespace lockprof::server
