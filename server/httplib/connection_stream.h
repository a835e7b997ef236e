// The byte stream of one accepted connection of the admin server, for
// cpp-httplib's request parser and response writer: plain TCP
// (SocketConnection) or TLS (TlsConnection), each read and write bounded by
// the server's read and write timeouts as httplib's own streams are.
//
// Why not httplib's: in the Debian build (a shared library) its stream
// classes are internal, and the server must put its own stream between the
// socket and the parser to bound what a request may make httplib read (see
// request_limit_stream.h). Unlike httplib's, one stream lives for the whole
// keep-alive connection, so bytes a client sent ahead (pipelining) stay
// buffered for the next request instead of being lost.
//
// One thread uses a stream at a time (the one serving the connection).
#ifndef LOCKPROF_SERVER_HTTPLIB_CONNECTION_STREAM_H_
#define LOCKPROF_SERVER_HTTPLIB_CONNECTION_STREAM_H_

#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace lockprof::server {

struct StreamTimeouts {
  // Longest wait for each read, and for each write (httplib's
  // set_read_timeout / set_write_timeout).
  std::chrono::microseconds read{5000000};
  std::chrono::microseconds write{5000000};
};

class ConnectionStream : public httplib::Stream {
 public:
  // Waits up to `timeout` for input (the next request on a kept-alive
  // connection). True if a read would not wait, false on timeout or error.
  virtual bool WaitForInput(std::chrono::milliseconds timeout) = 0;
  // Ends the session above TCP, if any (TLS: close_notify), once the last
  // response was written. The socket itself stays open.
  virtual void Finish() {}
  // A write failed (timed out, or the connection broke): what is still
  // queued for the client is part of an answer it will never complete.
  bool write_failed() const { return write_failed_; }

  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return fd_; }

 protected:
  ConnectionStream(int fd, const StreamTimeouts& timeouts) : fd_(fd), timeouts_(timeouts) {}
  // poll() on the socket for `events` for up to `timeout`: true if ready
  // (or in error: the next call reports it).
  bool Poll(short events, std::chrono::microseconds timeout) const;

  const int fd_;
  const StreamTimeouts timeouts_;
  bool write_failed_ = false;
};

// Plain TCP. Reads go through a small buffer, because httplib reads a
// request's head one byte at a time.
class SocketConnection final : public ConnectionStream {
 public:
  SocketConnection(int fd, const StreamTimeouts& timeouts) : ConnectionStream(fd, timeouts) {}

  bool WaitForInput(std::chrono::milliseconds timeout) override;
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;

 private:
  static constexpr size_t kBufferSize = 4096;
  char buffer_[kBufferSize];
  size_t begin_ = 0, end_ = 0;  // Unread bytes: buffer_[begin_, end_).
};

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_CONNECTION_STREAM_H_
