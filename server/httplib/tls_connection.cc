#include "lockprof/server/httplib/tls_connection.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>

#include <algorithm>
#include <climits>

namespace lockprof::server {

std::unique_ptr<TlsConnection> TlsConnection::Accept(int fd, SSL_CTX* ctx,
                                                     const StreamTimeouts& timeouts) {
  // Non-blocking, so that no OpenSSL call can wait past a timeout: each
  // wait is a poll() of ours.
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return nullptr;
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {  // The socket BIO does not close fd.
    SSL_free(ssl);
    return nullptr;
  }
  std::unique_ptr<TlsConnection> conn(new TlsConnection(fd, ssl, timeouts));
  for (;;) {
    ERR_clear_error();
    const int r = SSL_accept(ssl);
    if (r == 1) return conn;
    if (!conn->WaitToRetry(r)) return nullptr;
  }
}

TlsConnection::~TlsConnection() { SSL_free(ssl_); }

bool TlsConnection::WaitToRetry(int result) {
  switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_WANT_READ:
      if (Poll(POLLIN, timeouts_.read)) return true;
      break;
    case SSL_ERROR_WANT_WRITE:
      if (Poll(POLLOUT, timeouts_.write)) return true;
      break;
    case SSL_ERROR_ZERO_RETURN:  // The client's close_notify: a clean end.
      return false;
    default:
      break;
  }
  failed_ = true;
  return false;
}

bool TlsConnection::WaitForInput(std::chrono::milliseconds timeout) {
  return SSL_has_pending(ssl_) == 1 || Poll(POLLIN, timeout);
}

void TlsConnection::Finish() {
  // One attempt, not waiting for the client's own close_notify: the socket
  // is shut down right after.
  if (!failed_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);
  }
}

bool TlsConnection::is_readable() const {
  return SSL_has_pending(ssl_) == 1 || Poll(POLLIN, timeouts_.read);
}

bool TlsConnection::is_writable() const { return Poll(POLLOUT, timeouts_.write); }

ssize_t TlsConnection::read(char* ptr, size_t size) {
  if (failed_) return -1;
  const int n = int(std::min<size_t>(size, INT_MAX));
  for (;;) {
    ERR_clear_error();
    const int r = SSL_read(ssl_, ptr, n);
    if (r > 0) return r;
    if (SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) return 0;
    if (!WaitToRetry(r)) return -1;
  }
}

ssize_t TlsConnection::write(const char* ptr, size_t size) {
  if (failed_) return -1;
  // Retried with the same arguments, as SSL_write requires.
  const int n = int(std::min<size_t>(size, INT_MAX));
  for (;;) {
    ERR_clear_error();
    const int r = SSL_write(ssl_, ptr, n);
    if (r > 0) return r;
    if (!WaitToRetry(r)) {
      write_failed_ = true;
      return -1;
    }
  }
}

}  // namespace lockprof::server
