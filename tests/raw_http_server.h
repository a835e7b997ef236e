// Test helper: an HTTP server on a loopback port that answers each request
// with whatever bytes the test writes to the socket (an answer no real
// server library would send: an endless body, a gzip bomb, control
// characters), and keeps each request's head (request line and headers) as
// received, byte for byte. Header-only: included by the uploader tests.
#ifndef LOCKPROF_TESTS_RAW_HTTP_SERVER_H_
#define LOCKPROF_TESTS_RAW_HTTP_SERVER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lockprof::testing {

class RawHttpServer {
 public:
  // `answer` writes the answer to the connection, once the request (head
  // and body) has been read.
  using Answer = std::function<void(RawHttpServer& server, int fd)>;

  explicit RawHttpServer(Answer answer) : answer_(std::move(answer)) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        listen(listener_, 8) == 0 &&
        getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~RawHttpServer() {
    shutdown(listener_, SHUT_RDWR);  // Ends accept().
    thread_.join();
    close(listener_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The heads of the requests received so far.
  std::vector<std::string> Heads() {
    std::lock_guard<std::mutex> l(mu_);
    return heads_;
  }

  // Writes all of `data`; false once the client closed the connection.
  static bool Send(int fd, const std::string& data) {
    for (size_t done = 0; done < data.size();) {
      const ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += size_t(n);
    }
    return true;
  }

 private:
  // One connection at a time: the uploader sends one request at a time.
  void Serve() {
    for (;;) {
      const int c = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      const timeval timeout{10, 0};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
      if (ReadRequest(c)) answer_(*this, c);
      close(c);
    }
  }

  // Reads the head and the body (Content-Length bytes); keeps the head.
  bool ReadRequest(int c) {
    std::string data;
    char buf[4096];
    size_t end;
    while ((end = data.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) return false;
      data.append(buf, size_t(n));
    }
    std::string head = data.substr(0, end);
    size_t length = 0;
    const size_t at = head.find("Content-Length: ");
    if (at != std::string::npos) length = std::strtoul(head.c_str() + at + 16, nullptr, 10);
    for (size_t got = data.size() - end - 4; got < length;) {
      const ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) return false;
      got += size_t(n);
    }
    std::lock_guard<std::mutex> l(mu_);
    heads_.push_back(std::move(head));
    return true;
  }

  Answer answer_;
  int listener_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::string> heads_;  // Guarded by mu_.
  std::thread thread_;
};

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_RAW_HTTP_SERVER_H_
