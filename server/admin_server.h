// The embedded admin HTTP endpoint, serving /debug/pprof/ exactly as Go's
// net/http/pprof does, so `curl` and `go tool pprof` work unchanged.
//
//   lockprof::StartAdminServer();                      // 127.0.0.1:6060
//   lockprof::StartAdminServer({.address = "0.0.0.0", .port = 7070});
//
// Safe by default: it binds the loopback address unless told otherwise.
// Setting LOCKPROF_ADMIN_ADDR=host:port starts it when the program starts
// (and StartAdminServer() with default options uses that address too).
// Requests are served by the server's own threads; building a profile
// never makes an application thread wait. Any number of ?seconds=N windows
// may be open at once; a client that disconnects ends its window within
// 100 ms.
#ifndef LOCKPROF_SERVER_ADMIN_SERVER_H_
#define LOCKPROF_SERVER_ADMIN_SERVER_H_

#include <string>

#include "absl/status/status.h"

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
};

// Starts the admin server in background threads. With default options,
// LOCKPROF_ADMIN_ADDR (if set) overrides the address and port. Returns an
// error if the address is malformed, the port cannot be bound, or a server is
// already running.
absl::Status StartAdminServer(const AdminServerOptions& options = {});

// Stops the admin server (if running) and waits for its threads.
void StopAdminServer();

// The port the running admin server listens on, or 0 if none is running.
int AdminServerPort();

}  // namespace lockprof

#endif  // LOCKPROF_SERVER_ADMIN_SERVER_H_
