#include "lockprof/server/httplib/tls_context.h"

#include <openssl/err.h>

namespace lockprof::server {
namespace {

// OpenSSL's reason for the failure: the first error it queued (the cause;
// later ones are consequences). Empties this thread's queue, so that a
// later call does not report ours.
std::string LastError() {
  std::string reason;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    if (reason.empty()) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      reason = buf;
    }
  }
  return reason.empty() ? "unknown error" : reason;
}

// No passphrase, ever: OpenSSL's default would read the terminal.
int NoPassphrase(char*, int, int, void*) { return 0; }

}  // namespace

bool SetUpTlsContext(SSL_CTX& ctx, const std::string& cert, const std::string& key,
                     std::string* error) {
  ERR_clear_error();
  SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  SSL_CTX_set_default_passwd_cb(&ctx, NoPassphrase);
  if (SSL_CTX_use_certificate_chain_file(&ctx, cert.c_str()) != 1) {
    *error = "cannot load certificate \"" + cert + "\": " + LastError();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(&ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    *error = "cannot load private key \"" + key +
             "\" (an encrypted key is not supported): " + LastError();
    return false;
  }
  if (SSL_CTX_check_private_key(&ctx) != 1) {
    *error = "private key \"" + key + "\" is not the key of certificate \"" + cert +
             "\": " + LastError();
    return false;
  }
  return true;
}

}  // namespace lockprof::server
