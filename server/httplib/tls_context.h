// The admin server's TLS context: its certificate chain and private key,
// loaded so that a bad pair is a clear error at start, never a prompt.
//
// httplib's SSLServer(cert, key) loads the key with OpenSSL's default
// passphrase callback, which, for an encrypted key, prints "Enter PEM pass
// phrase:" and reads the program's own standard input: a program started
// with LOCKPROF_ADMIN_ADDR blocked there before main(), or had a line of
// its input taken. Here no passphrase is ever asked for (an encrypted key
// is refused), and a key that is not the certificate's (of another type
// too, which OpenSSL would otherwise keep in another slot and fail every
// handshake with) is refused.
#ifndef LOCKPROF_SERVER_HTTPLIB_TLS_CONTEXT_H_
#define LOCKPROF_SERVER_HTTPLIB_TLS_CONTEXT_H_

#include <openssl/ssl.h>

#include <string>

namespace lockprof::server {

// Sets up `ctx` for the admin server (TLS 1.2 or later, no compression)
// with the PEM certificate chain at `cert` and the PEM private key at
// `key`. On failure returns false and says why in *error.
bool SetUpTlsContext(SSL_CTX& ctx, const std::string& cert, const std::string& key,
                     std::string* error);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HTTPLIB_TLS_CONTEXT_H_
