// Helpers for the admin endpoint's defence tests: a scoped server, curl,
// and raw sockets that misbehave on purpose.
#ifndef LOCKPROF_TESTS_ADMIN_TEST_CLIENT_H_
#define LOCKPROF_TESTS_ADMIN_TEST_CLIENT_H_

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "lockprof/server/admin_server.h"
#include "lockprof/server/httplib/connection_guard.h"
#include "test_util.h"

namespace lockprof::admin_test {

using lockprof::AdminServerOptions;
using lockprof::testing::NowNanos;
using lockprof::testing::ReadFile;
using lockprof::testing::RunCommand;
using lockprof::testing::WriteTempFile;

// Starts the admin server on a free loopback port; stops it at scope exit.
class Server {
 public:
  explicit Server(AdminServerOptions opts) {
    opts.address = "127.0.0.1";
    opts.port = 0;
    status_ = lockprof::StartAdminServer(opts);
    port_ = lockprof::AdminServerPort();
  }
  ~Server() { lockprof::StopAdminServer(); }
  const absl::Status& status() const { return status_; }
  int port() const { return port_; }
  std::string url(const std::string& path, const char* scheme = "http") const {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  absl::Status status_;
  int port_ = 0;
};

// Default options changed by `set`.
template <typename F>
AdminServerOptions Options(F set) {
  AdminServerOptions o;
  set(o);
  return o;
}

// Runs curl with `args`; returns the HTTP status (0 if none) and sets *body
// and *exit_status (curl's exit code).
inline int Curl(const std::string& args, std::string* body = nullptr, int* exit_status = nullptr,
                std::string* headers = nullptr) {
  const std::string body_file = WriteTempFile(""), header_file = WriteTempFile("");
  int rc = 0;
  const std::string code = RunCommand("curl -s -g -m 30 -o " + body_file + " -D " + header_file +
                                          " -w '%{http_code}' " + args + " 2>/dev/null",
                                      &rc);
  if (body) *body = ReadFile(body_file);
  if (headers) *headers = ReadFile(header_file);
  if (exit_status) *exit_status = rc;
  std::remove(body_file.c_str());
  std::remove(header_file.c_str());
  return std::atoi(code.c_str());
}

inline int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closed `fd` (EOF or reset), waiting up to timeout_ms.
// Anything the server sent before closing is read and dropped.
inline bool ClosedByServer(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

// What the server sent on a connection until it closed it (or 30 s).
inline std::string ReadUntilClosed(int fd) {
  std::string got;
  char buf[4096];
  for (int waited_ms = 0; waited_ms < 30000;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) == 0) {
      waited_ms += 100;
      continue;
    }
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;  // Closed, or reset.
    got.append(buf, size_t(n));
  }
  return got;
}

// The status code of a raw HTTP/1.1 response, or 0 if there is none.
inline int StatusOf(const std::string& response) {
  return response.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(response.c_str() + 9) : 0;
}

// GETs `url` (which starts the server's accept thread and watchdog) and
// waits until the server has closed that connection too: curl has its
// response a moment before the server's task ends, and until then the
// connection still counts against max_connections. Returns curl's status.
inline int WarmUp(const std::string& url) {
  const int status = Curl(url);
  const int64_t start = NowNanos();
  while (lockprof::server::ConnectionsOpen() != 0 && NowNanos() - start < 10'000'000'000) {
    usleep(1000);
  }
  return status;
}

// A self-signed certificate for 127.0.0.1 and its key, in a new temporary
// directory (returned; the caller removes it). Empty on failure.
inline std::string MakeSelfSignedCert(std::string* cert, std::string* key) {
  const std::string dir = RunCommand("mktemp -d | tr -d '\\n'");
  *cert = dir + "/cert.pem";
  *key = dir + "/key.pem";
  int rc = 0;
  RunCommand(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " +
          *key + " -out " + *cert + " 2>/dev/null",
      &rc);
  return rc == 0 ? dir : "";
}

// A certificate from MakeSelfSignedCert whose directory is removed at scope
// exit; ok() is false if it could not be made.
class ScopedCert {
 public:
  ScopedCert() : dir_(MakeSelfSignedCert(&cert_, &key_)) {}
  ~ScopedCert() {
    if (!dir_.empty()) RunCommand("rm -rf " + dir_);
  }
  ScopedCert(const ScopedCert&) = delete;
  ScopedCert& operator=(const ScopedCert&) = delete;
  bool ok() const { return !dir_.empty(); }
  const std::string& cert() const { return cert_; }
  const std::string& key() const { return key_; }

  // Options for a server over TLS with this certificate that requires `token`.
  AdminServerOptions TlsWithToken(const std::string& token) const {
    AdminServerOptions o;
    o.token = token;
    o.tls_cert_file = cert_;
    o.tls_key_file = key_;
    return o;
  }

 private:
  std::string cert_, key_;
  const std::string dir_;
};

inline double SecondsSince(int64_t start_ns) { return double(NowNanos() - start_ns) / 1e9; }

// Sends `request` one byte at a time (then 'a's, never ending it), waiting up
// to `poll_ms` for the server to close the connection after each, for at
// most `limit_s` seconds. Returns whether the server cut the connection.
inline bool TrickleUntilCut(int fd, const std::string& request, int poll_ms, double limit_s) {
  const int64_t start = NowNanos();
  for (size_t i = 0; SecondsSince(start) < limit_s; ++i) {
    const char c = i < request.size() ? request[i] : 'a';
    if (send(fd, &c, 1, MSG_NOSIGNAL) != 1 || ClosedByServer(fd, poll_ms)) return true;
  }
  return false;
}

// Calls fn(fd, link, connected) for every descriptor of this process that
// is an IPv4 socket whose local port is `port` ("link": its /proc name,
// "socket:[inode]"; "connected": it has a peer, so it is not listening).
// Through /proc and get*name only: the descriptors belong to other threads.
template <typename F>
void ForEachSocketOnPort(int port, F fn) {
  DIR* dir = opendir("/proc/self/fd");
  while (dirent* e = readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    char link[64] = {};
    const std::string path = "/proc/self/fd/" + std::string(e->d_name);
    if (fd <= 2 || readlink(path.c_str(), link, sizeof link - 1) <= 0 ||
        std::string(link).rfind("socket:", 0) != 0) {
      continue;
    }
    sockaddr_in sa{}, peer{};
    socklen_t salen = sizeof sa, peerlen = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &salen) == 0 &&
        sa.sin_family == AF_INET && ntohs(sa.sin_port) == port) {
      fn(fd, std::string(link), getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peerlen) == 0);
    }
  }
  closedir(dir);
}

// A body of addresses that /debug/pprof/symbol answers with over 2 MiB.
inline std::string ManyAddresses() {
  char addr[32];
  std::snprintf(addr, sizeof addr, "0x%jx+",
                uintmax_t(reinterpret_cast<uintptr_t>(&ManyAddresses)));
  std::string addresses;
  while (addresses.size() < (1u << 20)) addresses += addr;
  return addresses;
}

// Connects with a small receive window and sends a request for the answer
// to `addresses`: the server's writes then wait on the client. Returns the
// socket (unconnected if the connection failed).
inline int AskForMoreThanItReads(int port, const std::string& addresses) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int rcvbuf = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return fd;
  const std::string request =
      "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Content-Type: application/octet-stream\r\n"
      "Content-Length: " +
      std::to_string(addresses.size()) + "\r\n\r\n" + addresses;
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += size_t(n);
  }
  return fd;
}

// Distinct open sockets of this process whose local port is `port` and that
// are connections, not the listening socket: the server's side of them.
inline int ServerSideConnections(int port) {
  std::set<std::string> sockets;
  ForEachSocketOnPort(port, [&](int, const std::string& link, bool connected) {
    if (connected) sockets.insert(link);
  });
  return int(sockets.size());
}

// Descriptors of this process for sockets whose local port is `port`, the
// listening one included.
inline int SocketsOnPort(int port) {
  int n = 0;
  ForEachSocketOnPort(port, [&](int, const std::string&, bool) { ++n; });
  return n;
}

// A descriptor of the socket listening on `port`, or -1.
inline int ListeningSocket(int port) {
  int found = -1;
  ForEachSocketOnPort(port, [&](int fd, const std::string&, bool connected) {
    if (!connected) found = fd;
  });
  return found;
}

inline int ThreadCount() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

}  // namespace lockprof::admin_test

#endif  // LOCKPROF_TESTS_ADMIN_TEST_CLIENT_H_
