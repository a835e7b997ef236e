// A TLS connection of the admin server (see connection_stream.h): the
// handshake and every read and write through OpenSSL, on the socket made
// non-blocking, each wait bounded by the server's timeouts.
//
// httplib::SSLServer does the same inside the library; the admin server does
// it here because it serves connections itself (bounded_server.h), with the
// SSL_CTX that SSLServer loaded the certificate and key into.
#ifndef LOCKPROF_SERVER_HTTPLIB_TLS_CONNECTION_H_
#define LOCKPROF_SERVER_HTTPLIB_TLS_CONNECTION_H_

#include <openssl/ssl.h>

#include <memory>

#include "lockprof/server/httplib/connection_stream.h"

namespace lockprof::server {

class TlsConnection final : public ConnectionStream {
 public:
  // Runs the server side of the handshake on `fd`, each wait bounded by the
  // read or write timeout. nullptr if it fails or times out.
  static std::unique_ptr<TlsConnection> Accept(int fd, SSL_CTX* ctx,
                                               const StreamTimeouts& timeouts);
  ~TlsConnection() override;

  // For httplib::Request::ssl.
  SSL* ssl() const { return ssl_; }

  bool WaitForInput(std::chrono::milliseconds timeout) override;
  void Finish() override;
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;

 private:
  TlsConnection(int fd, SSL* ssl, const StreamTimeouts& timeouts)
      : ConnectionStream(fd, timeouts), ssl_(ssl) {}
  // Waits for what the failed call `result` of an SSL_* I/O function needs:
  // true to retry it, false if it failed for good (also sets failed_), or
  // timed out.
  bool WaitToRetry(int result);

  SSL* const ssl_;
  // A fatal error or a timeout: no close_notify may be sent.
  bool failed_ = false;
};

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_TLS_CONNECTION_H_
