// The admin server's connection guard (server/httplib/connection_guard.h)
// guards the connections its server accepted and no other: a program
// serving the same port number on another address keeps its connections,
// and the server's own stay guarded; and finding a new connection costs
// the same however many descriptors the program has open.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "admin_test_client.h"
#include "lifecycle_util.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::admin_test::ClosedByServer;
using lockprof::admin_test::Connect;
using lockprof::admin_test::Options;
using lockprof::admin_test::ReadUntilClosed;
using lockprof::admin_test::SecondsSince;
using lockprof::admin_test::Server;
using lockprof::admin_test::StatusOf;
using lockprof::admin_test::TrickleUntilCut;
using lockprof::testing::NowNanos;

// A TCP socket bound to 127.0.0.2:port, listening; -1 if that fails.
int ListenOnSecondLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(0x7f000002);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

int ConnectTo(uint32_t host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(host);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

// The program's own connection, accepted on 127.0.0.2 at the admin
// server's port number before the admin connection (so at a lower
// descriptor, where a search by port number finds it first), is left
// alone; the admin server's trickling client is cut at its deadline.
TEST(AdminGuardTest, TheProgramsConnectionsOnTheSamePortNumberAreNotTheServers) {
  Server s(Options([](auto& o) { o.read_timeout_ms = 1000; }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const int listener = ListenOnSecondLoopback(s.port());
  ASSERT_GE(listener, 0) << "cannot listen on 127.0.0.2:" << s.port();
  const int app_client = ConnectTo(0x7f000002, s.port());
  ASSERT_GE(app_client, 0);
  const int app_conn = accept(listener, nullptr, nullptr);
  ASSERT_GE(app_conn, 0);

  // The program's connection as descriptor 0, below every other: a search
  // by port number alone met it first.
  const int saved_stdin = dup(0);
  ASSERT_EQ(dup2(app_conn, 0), 0);
  close(app_conn);
  const int app = 0;
  const int admin = Connect(s.port());
  ASSERT_GE(admin, 0);
  const std::string request = "GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  const int64_t start = NowNanos();
  const bool cut = TrickleUntilCut(admin, request, 200, 15);
  EXPECT_TRUE(cut) << "the admin client was not cut at its deadline";
  EXPECT_LT(SecondsSince(start), 10.0);
  // The program's connection still carries data both ways.
  EXPECT_FALSE(ClosedByServer(app_client, 0));
  EXPECT_EQ(send(app_client, "x", 1, MSG_NOSIGNAL), 1);
  char c = 0;
  EXPECT_EQ(recv(app, &c, 1, 0), 1);
  EXPECT_EQ(send(app, "y", 1, MSG_NOSIGNAL), 1);
  EXPECT_EQ(recv(app_client, &c, 1, 0), 1);
  EXPECT_EQ(c, 'y');
  close(admin);
  dup2(saved_stdin, 0);
  close(saved_stdin);
  close(app_client);
  close(listener);
}

// Seconds that `n` requests take, one connection each, one after another.
double SecondsForRequests(int port, int n, int* ok) {
  const std::string request = "GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const int64_t start = NowNanos();
  for (int i = 0; i < n; ++i) {
    const int fd = Connect(port);
    if (fd < 0) continue;
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size()) &&
        StatusOf(ReadUntilClosed(fd)) == 200) {
      ++*ok;
    }
    close(fd);
  }
  return SecondsSince(start);
}

// A service with thousands of descriptors open (its clients' connections,
// files) serves its admin endpoint as fast as one with a few: the guard
// does not look through the descriptor table for each new connection. (It
// did: about 4 us per open descriptor and connection, on the accept thread,
// which a client connecting in a loop could make the service spend.)
TEST(AdminGuardTest, ManyOpenDescriptorsDoNotSlowNewConnections) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  constexpr int kRequests = 200;
  int ok = 0;
  SecondsForRequests(s.port(), 5, &ok);  // Warm up.
  const double few = SecondsForRequests(s.port(), kRequests, &ok);

  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit raised = saved;
  raised.rlim_cur = saved.rlim_max;
  setrlimit(RLIMIT_NOFILE, &raised);
  std::vector<int> crowd;
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  while (crowd.size() < 12000) {
    const int fd = fcntl(null_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) break;
    crowd.push_back(fd);
  }
  // Room for the connections.
  for (int i = 0; i < 32 && !crowd.empty(); ++i) {
    close(crowd.back());
    crowd.pop_back();
  }
  const double many = SecondsForRequests(s.port(), kRequests, &ok);
  for (const int fd : crowd) close(fd);
  close(null_fd);
  setrlimit(RLIMIT_NOFILE, &saved);

  std::printf("%d requests: %.3f s with a few descriptors open, %.3f s with %zu more\n", kRequests,
              few, many, crowd.size());
  EXPECT_EQ(ok, 5 + 2 * kRequests);
  // The scan cost about 4 us per descriptor and connection: 0.8 s more with
  // 1,000 descriptors, 10 s with 12,000.
  EXPECT_GE(crowd.size(), 1000u) << "the test needs a higher RLIMIT_NOFILE";
  EXPECT_LT(many, 2 * few + 0.3) << crowd.size() << " descriptors open";
}

// At its thread limit (a container's pids.max, RLIMIT_NPROC), the process
// keeps running and its admin server keeps answering: no worker can be
// started for more connections at once, and the workers there are serve
// them in turn. (std::thread threw std::system_error on the accept thread:
// std::terminate ended the program at its first concurrent scrapes.) In a
// child that drops to an unprivileged user (root is exempt from
// RLIMIT_NPROC) with a limit of one.
TEST(AdminGuardTest, AtTheThreadLimitTheServerAnswersAndTheProcessLives) {
  const auto child = lockprof::testing::RunInForkedChild(
      [](int out_fd) {
        Server s(Options([](auto&) {}));
        if (!s.status().ok()) return 2;
        int ok = 0;
        SecondsForRequests(s.port(), 1, &ok);  // Its threads start now.
        if (const int failed = lockprof::testing::AtThreadLimit(); failed != 0) return failed;
        // Eight at once: more than the idle workers, so the pool tries to start more.
        const std::string request =
            "GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        std::vector<int> fds;
        for (int i = 0; i < 8; ++i) fds.push_back(Connect(s.port()));
        for (const int fd : fds) send(fd, request.data(), request.size(), MSG_NOSIGNAL);
        ok = 0;
        for (const int fd : fds) {
          ok += StatusOf(ReadUntilClosed(fd)) == 200;
          close(fd);
        }
        lockprof::testing::WriteAll(out_fd, std::to_string(ok) + " of 8 answered\n");
        return ok == 8 ? 0 : 1;
      },
      60);
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0) << child.output << " (2: no server; 3-5: AtThreadLimit)";
}

}  // namespace
