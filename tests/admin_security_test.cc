// Who the admin endpoint answers: the bearer token (every path, compared
// in constant time) and TLS, checked with curl as a client would.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "admin_test_client.h"
#include "lockprof/lockprof.h"
#include "lockprof/server/handlers/admin_security.h"
#include "lockprof/server/httplib/connection_guard.h"
#include "test_util.h"

namespace {

using lockprof::AdminServerOptions;
using lockprof::admin_test::ClosedByServer;
using lockprof::admin_test::Connect;
using lockprof::admin_test::Curl;
using lockprof::admin_test::Options;
using lockprof::admin_test::ScopedCert;
using lockprof::admin_test::SecondsSince;
using lockprof::admin_test::Server;
using lockprof::admin_test::ServerSideConnections;
using lockprof::admin_test::ThreadCount;
using lockprof::testing::NowNanos;
using lockprof::testing::ParseProfile;
using lockprof::testing::RunCommand;
using lockprof::testing::WriteTempFile;

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  using lockprof::server::ConstantTimeEquals;
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("s3cret", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("s3cret", "x3cret"));
  EXPECT_FALSE(ConstantTimeEquals("s3cret", "s3creX"));
  EXPECT_FALSE(ConstantTimeEquals("s3cret", "s3cre"));
  EXPECT_FALSE(ConstantTimeEquals("s3cre", "s3cret"));
  EXPECT_FALSE(ConstantTimeEquals("", "s"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0", 2), "a"));
  using lockprof::server::BearerTokenMatches;
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(BearerTokenMatches("bearer  s3cret ", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer ", ""));
  EXPECT_FALSE(BearerTokenMatches("s3cret", "s3cret"));
}

constexpr char kToken[] = "tok-5b8f1c2e9d";

TEST(AdminSecurityTest, TokenGuardsEveryPath) {
  Server s(Options([](auto& o) { o.token = kToken; }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  for (const char* path : {"/debug/pprof/", "/debug/pprof/mutex", "/metrics", "/nonexistent",
                           "/debug/pprof/symbol", "/debug/pprof"}) {
    SCOPED_TRACE(path);
    std::string body, headers;
    EXPECT_EQ(Curl("'" + s.url(path) + "'", &body, nullptr, &headers), 401);
    EXPECT_EQ(body, "Unauthorized\n");
    EXPECT_NE(headers.find("WWW-Authenticate: Bearer"), std::string::npos) << headers;
    EXPECT_EQ(Curl("-H 'Authorization: Bearer wrong-token' '" + s.url(path) + "'"), 401);
    EXPECT_EQ(Curl("-H 'Authorization: Bearer tok-5b8f1c2e9' '" + s.url(path) + "'"), 401);
    EXPECT_EQ(Curl("-H 'Authorization: Basic " + std::string(kToken) + "' '" + s.url(path) + "'"),
              401);
  }
  std::string body;
  const std::string auth = "-H 'Authorization: Bearer " + std::string(kToken) + "' ";
  EXPECT_EQ(Curl(auth + s.url("/debug/pprof/mutex"), &body), 200);
  ParseProfile(body);
  EXPECT_EQ(Curl(auth + s.url("/metrics"), &body), 200);
  EXPECT_NE(body.find("lockprof_"), std::string::npos);
  EXPECT_EQ(Curl(auth + s.url("/nonexistent")), 404);
}

TEST(AdminSecurityTest, TokenFromEnvironment) {
  setenv("LOCKPROF_ADMIN_TOKEN", kToken, 1);
  {
    Server s({});
    unsetenv("LOCKPROF_ADMIN_TOKEN");
    ASSERT_TRUE(s.status().ok()) << s.status();
    EXPECT_EQ(Curl(s.url("/debug/pprof/")), 401);
    EXPECT_EQ(
        Curl("-H 'Authorization: Bearer " + std::string(kToken) + "' " + s.url("/debug/pprof/")),
        200);
  }
  Server open({});  // Without the variable, no token.
  EXPECT_EQ(Curl(open.url("/debug/pprof/")), 200);
}

TEST(AdminSecurityTest, ServesTlsVerifiedByCurl) {
  const ScopedCert tls;
  ASSERT_TRUE(tls.ok());
  const std::string& cert = tls.cert();
  const std::string& key = tls.key();
  {
    Server s(tls.TlsWithToken(kToken));
    ASSERT_TRUE(s.status().ok()) << s.status();
    const std::string auth = "-H 'Authorization: Bearer " + std::string(kToken) + "' ";
    std::string body;
    EXPECT_EQ(Curl(auth + "--cacert " + cert + " " + s.url("/debug/pprof/mutex", "https"), &body),
              200);
    ParseProfile(body);
    EXPECT_EQ(Curl("--cacert " + cert + " " + s.url("/metrics", "https")), 401);
    // Without the CA the certificate is not trusted (curl exit 60), and
    // plain HTTP gets no HTTP answer.
    int exit_status = 0;
    EXPECT_EQ(Curl(auth + s.url("/metrics", "https"), nullptr, &exit_status), 0);
    EXPECT_EQ(exit_status, 60);
    EXPECT_EQ(Curl(auth + s.url("/metrics"), nullptr, &exit_status), 0);
    EXPECT_NE(exit_status, 0);
    // A TLS client that gives up on a large response (~2 MB) once it sees
    // its size leaves the process alive and serving: writing to the dead
    // connection must not raise SIGPIPE.
    char addr[32];
    std::snprintf(addr, sizeof addr, "0x%jx+", uintmax_t(reinterpret_cast<uintptr_t>(&Curl)));
    std::string addresses;
    while (addresses.size() < (900u << 10)) addresses += addr;
    const std::string body_file = WriteTempFile(addresses);
    EXPECT_EQ(Curl(auth + "--cacert " + cert + " --max-filesize 1000 " +
                       "-H 'Content-Type: application/octet-stream' --data-binary @" + body_file +
                       " " + s.url("/debug/pprof/symbol", "https"),
                   nullptr, &exit_status),
              200);
    EXPECT_EQ(exit_status, 63);  // Gave up, as asked.
    std::remove(body_file.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(Curl(auth + "--cacert " + cert + " " + s.url("/metrics", "https")), 200);
  }
  EXPECT_FALSE(Server(Options([&](auto& o) { o.tls_cert_file = cert; })).status().ok());
  EXPECT_FALSE(Server(Options([&](auto& o) {
                 o.tls_cert_file = key;
                 o.tls_key_file = cert + ".missing";
               }))
                   .status()
                   .ok());
}

// An encrypted key is refused at once, with a clear error: OpenSSL's default
// passphrase prompt read the program's standard input (and blocked a program
// started with LOCKPROF_ADMIN_ADDR before main()). A key of another type
// than the certificate's is refused too: OpenSSL kept it in another slot,
// and every handshake failed.
TEST(AdminSecurityTest, KeysThatCannotServeAreRefusedWithoutAPrompt) {
  const ScopedCert tls;
  ASSERT_TRUE(tls.ok());
  const std::string encrypted = WriteTempFile(""), ec = WriteTempFile("");
  int rc = 0;
  RunCommand("openssl pkey -in " + tls.key() + " -aes256 -passout pass:secret -out " + encrypted +
                 " 2>/dev/null",
             &rc);
  ASSERT_EQ(rc, 0);
  RunCommand(
      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + ec + " 2>/dev/null",
      &rc);
  ASSERT_EQ(rc, 0);
  // Standard input: a pipe holding a line of the program's, which must stay
  // unread.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const int saved_stdin = dup(0);
  ASSERT_EQ(dup2(fds[0], 0), 0);
  const char line[] = "program input\n";
  ASSERT_EQ(write(fds[1], line, sizeof line - 1), ssize_t(sizeof line - 1));
  close(fds[1]);
  const int64_t start = NowNanos();
  const absl::Status status = Server(Options([&](auto& o) {
                                o.tls_cert_file = tls.cert();
                                o.tls_key_file = encrypted;
                              })).status();
  EXPECT_LT(SecondsSince(start), 5.0);
  dup2(saved_stdin, 0);
  close(saved_stdin);
  char buf[64] = {};
  EXPECT_EQ(read(fds[0], buf, sizeof buf), ssize_t(sizeof line - 1)) << "standard input was read";
  close(fds[0]);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("an encrypted key is not supported"), std::string::npos)
      << status;
  const absl::Status mixed = Server(Options([&](auto& o) {
                               o.tls_cert_file = tls.cert();
                               o.tls_key_file = ec;
                             })).status();
  EXPECT_EQ(mixed.code(), absl::StatusCode::kInvalidArgument) << mixed;
  EXPECT_NE(mixed.message().find("is not the key of certificate"), std::string::npos) << mixed;
  std::remove(encrypted.c_str());
  std::remove(ec.c_str());
}

void OnSigpipe(int) {}

// httplib's server sets SIGPIPE to ignored for the whole process; starting
// lockprof's leaves the program's disposition as it was, the default
// included (a client that goes away mid-response still cannot kill the
// program: ServesTlsVerifiedByCurl runs with the default).
TEST(AdminSecurityTest, StartingTheServerLeavesTheProgramsSigpipeAlone) {
  struct sigaction old {};
  for (void (*disposition)(int) : {&OnSigpipe, SIG_DFL}) {
    struct sigaction set {};
    set.sa_handler = disposition;
    ASSERT_EQ(sigaction(SIGPIPE, &set, &old), 0);
    for (const bool tls : {false, true}) {
      const ScopedCert cert;
      ASSERT_TRUE(cert.ok());
      Server s(tls ? cert.TlsWithToken(kToken) : AdminServerOptions{});
      ASSERT_TRUE(s.status().ok()) << s.status();
      struct sigaction now {};
      ASSERT_EQ(sigaction(SIGPIPE, nullptr, &now), 0);
      EXPECT_EQ(now.sa_handler, disposition) << (tls ? "TLS" : "plain");
    }
    sigaction(SIGPIPE, &old, nullptr);
  }
}

// A TLS client that resets its connection while its window waits: the
// server's writes to it (the answer, then TLS's closing alert, which
// OpenSSL writes with write(2)) fail with EPIPE, and SIGPIPE, at its default
// disposition here, must not kill the program.
TEST(AdminSecurityTest, ATlsClientThatResetsCannotKillTheProgram) {
  struct sigaction dfl {
  }, old{};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(sigaction(SIGPIPE, &dfl, &old), 0);
  const ScopedCert tls;
  ASSERT_TRUE(tls.ok());
  Server s(tls.TlsWithToken(kToken));
  ASSERT_TRUE(s.status().ok()) << s.status();
  for (int i = 0; i < 5; ++i) {
    int rc = 0;
    RunCommand(
        "python3 -c \"import socket, ssl, struct\n"
        "t = ssl._create_unverified_context().wrap_socket("
        "socket.create_connection(('127.0.0.1', " +
            std::to_string(s.port()) +
            ")))\n"
            "t.sendall(b'GET /debug/pprof/mutex?seconds=1 HTTP/1.1\\r\\nHost: x\\r\\n"
            "Authorization: Bearer " +
            kToken +
            "\\r\\n\\r\\n')\n"
            "t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
            "t.close()\"",
        &rc);
    EXPECT_EQ(rc, 0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const std::string auth = "-H 'Authorization: Bearer " + std::string(kToken) + "' ";
  EXPECT_EQ(Curl(auth + "--cacert " + tls.cert() + " " + s.url("/metrics", "https")), 200);
  sigaction(SIGPIPE, &old, nullptr);
}

}  // namespace
