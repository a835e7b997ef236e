// The embedded admin HTTP endpoint, serving /debug/pprof/ exactly as Go's
// net/http/pprof does, so `curl` and `go tool pprof` work unchanged.
//
//   lockprof::StartAdminServer();                      // 127.0.0.1:6060
//   lockprof::StartAdminServer({.address = "0.0.0.0", .port = 7070});
//
// Safe by default: it binds the loopback address unless told otherwise.
// Setting LOCKPROF_ADMIN_ADDR=host:port starts it when the program starts.
// The environment wins the address; a call in code succeeds and takes over:
// StartAdminServer(options) then serves LOCKPROF_ADMIN_ADDR's address with
// the other settings of `options` (token, TLS, limits), says once on stderr
// which address it serves, and returns OK. AdminServerAddress() tells the
// program the address served. If the environment's address cannot be
// listened on (another process has its port: a child that inherited the
// variable), the start from the environment says so once and the program
// runs on without it; a call in code then serves the code's own address.
// Requests are served by the server's own threads; building a profile
// never makes an application thread wait. Up to max_threads / 2 ?seconds=N
// windows may be open at once (more are answered 503 with Retry-After, so
// that other requests always find a thread); a client that disconnects
// ends its window within 100 ms. No client can hold the server's resources
// beyond the limits below, and a token and TLS can restrict who is
// answered.
#ifndef LOCKPROF_SERVER_ADMIN_SERVER_H_
#define LOCKPROF_SERVER_ADMIN_SERVER_H_

#include <string>

#include "absl/status/status.h"
#include "lockprof/agent/base/export.h"

namespace lockprof {

struct AdminServerOptions {
  // Address to bind: loopback unless you mean otherwise.
  std::string address = "127.0.0.1";
  // Port; 0 picks a free one (see AdminServerPort()).
  int port = 6060;
  // Longest ?seconds=N profile window served (Go bounds it by the server's
  // WriteTimeout, and answers a longer one with 400 "profile duration
  // exceeds server's WriteTimeout"; so does lockprof). 0: no limit.
  int max_profile_seconds = 300;
  // Most requests served at once (each waiting ?seconds=N request and each
  // open keep-alive connection holds one thread); more wait their turn.
  // Threads are started as requests arrive and exit after 30 s idle.
  int max_threads = 64;

  // --- Securing the endpoint (see also README "Securing the endpoint").

  // Secret every request must carry as "Authorization: Bearer <token>";
  // without it every path answers 401 and nothing else. Compared in
  // constant time. Empty: LOCKPROF_ADMIN_TOKEN if set, else no token.
  std::string token{};
  // PEM certificate (chain) and private key: serve HTTPS instead of HTTP.
  // The key must be unencrypted and the certificate's (else the start fails
  // with the reason: no passphrase is ever asked for).
  // Empty: LOCKPROF_ADMIN_TLS_CERT / LOCKPROF_ADMIN_TLS_KEY if set, else
  // plain HTTP. Give both or neither.
  std::string tls_cert_file{};
  std::string tls_key_file{};
  // A client must deliver a whole request (TLS handshake included; on a
  // kept-alive connection, counted from 5 s after the previous response)
  // within this time, or it is disconnected: a client sending one byte a
  // second cannot hold a thread. Also the bound on each single read.
  int read_timeout_ms = 5000;
  // A client must take a whole response within this time once it is ready
  // (a ?seconds=N window waits before its response is ready, so it is not
  // limited by this; max_profile_seconds limits it). Also the bound on each
  // single write.
  int write_timeout_ms = 10000;
  // Largest request body accepted (POST /debug/pprof/symbol); larger
  // answers 413. httplib adds limits compiled into it: 8 KiB for the request
  // line (longer answers 414), for each header line (longer: 400 or the
  // connection is closed) and for an application/x-www-form-urlencoded body
  // (413; go tool pprof posts application/octet-stream).
  size_t max_request_bytes = 1 << 20;
  // Largest request head (request line, headers and the blank line after
  // them) read; a longer one answers 431 Request Header Fields Too Large
  // (414 if the request line alone is over 8 KiB) and the connection is
  // closed. This bounds the memory a request's headers take, whatever their
  // number. It also bounds the lines that frame a chunked body (chunk sizes,
  // trailers), on top of max_request_bytes: more answers 413.
  size_t max_request_head_bytes = 64 << 10;
  // Most connections open at once, queued and served together (raised to
  // max_threads if lower). One more evicts the oldest connection that
  // awaits a request (connected and silent, or idle between requests), so
  // that idle connections cannot keep every client out; if every one is
  // busy, it is closed as soon as accepted, without reading. A flood of
  // connections holds bounded memory and threads.
  int max_connections = 128;
};

// Starts the admin server in background threads. LOCKPROF_ADMIN_ADDR, if
// set, overrides options.address and options.port (see above); a server
// that the environment started is replaced by one with `options`' other
// settings, on the same address. Returns an error if the address is
// malformed, the port cannot be bound, or a server started by code is
// already running.
LOCKPROF_EXPORT absl::Status StartAdminServer(const AdminServerOptions& options = {});

// Stops the admin server (if running) and waits for its threads: for the
// requests being handled or answered (an open ?seconds= window ends at
// once) for up to a second, not for clients that have not sent theirs,
// which are cut at once. It may be started again (on LOCKPROF_ADMIN_ADDR's
// address if set).
LOCKPROF_EXPORT void StopAdminServer();

// The port the running admin server listens on, or 0 if none is running.
LOCKPROF_EXPORT int AdminServerPort();

// The address the running admin server listens on, "host:port" ("[::1]:6060"
// for IPv6), or "" if none is running.
LOCKPROF_EXPORT std::string AdminServerAddress();

}  // namespace lockprof

#endif  // LOCKPROF_SERVER_ADMIN_SERVER_H_
