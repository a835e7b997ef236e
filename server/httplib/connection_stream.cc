#include "lockprof/server/httplib/connection_stream.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace lockprof::server {

namespace {

// getnameinfo's numeric host and port of a socket address, as httplib
// reports them in Request::remote_addr / local_addr.
void NumericHostAndPort(const sockaddr_storage& ss, socklen_t len, std::string& ip, int& port) {
  char host[NI_MAXHOST], service[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&ss), len, host, sizeof host, service,
                  sizeof service, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return;
  }
  ip = host;
  port = std::atoi(service);
}

// The peer's (getpeername) or our own (getsockname) end of socket `fd`.
void AddressOf(int (*get_name)(int, sockaddr*, socklen_t*), int fd, std::string& ip, int& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (get_name(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    NumericHostAndPort(ss, len, ip, port);
}

}  // namespace

void ConnectionStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  AddressOf(getpeername, fd_, ip, port);
}

void ConnectionStream::get_local_ip_and_port(std::string& ip, int& port) const {
  AddressOf(getsockname, fd_, ip, port);
}

bool ConnectionStream::Poll(short events, std::chrono::microseconds timeout) const {
  pollfd p{fd_, events, 0};
  // Rounded up: a 500 us timeout must not become a non-blocking check.
  const int ms = int((timeout.count() + 999) / 1000);
  int n;
  do {
    n = poll(&p, 1, ms);
  } while (n < 0 && errno == EINTR);
  return n > 0;
}

bool SocketConnection::WaitForInput(std::chrono::milliseconds timeout) {
  return begin_ < end_ || Poll(POLLIN, timeout);
}

bool SocketConnection::is_readable() const { return begin_ < end_ || Poll(POLLIN, timeouts_.read); }

bool SocketConnection::is_writable() const { return Poll(POLLOUT, timeouts_.write); }

ssize_t SocketConnection::read(char* ptr, size_t size) {
  if (begin_ == end_) {
    // Large reads (bodies) go straight to the caller; small ones refill.
    char* into = size >= kBufferSize ? ptr : buffer_;
    const size_t want = size >= kBufferSize ? size : kBufferSize;
    ssize_t n;
    for (;;) {
      n = recv(fd_, into, want, MSG_DONTWAIT);
      if (n >= 0) break;
      if (errno == EINTR) continue;
      if ((errno != EAGAIN && errno != EWOULDBLOCK) || !Poll(POLLIN, timeouts_.read)) return -1;
    }
    if (n == 0 || into == ptr) return n;
    begin_ = 0;
    end_ = size_t(n);
  }
  const size_t n = std::min(size, end_ - begin_);
  std::memcpy(ptr, buffer_ + begin_, n);
  begin_ += n;
  return ssize_t(n);
}

ssize_t SocketConnection::write(const char* ptr, size_t size) {
  for (;;) {
    const ssize_t n = send(fd_, ptr, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if ((errno != EAGAIN && errno != EWOULDBLOCK) || !Poll(POLLOUT, timeouts_.write)) {
      write_failed_ = true;
      return -1;
    }
  }
}

}  // namespace lockprof::server
