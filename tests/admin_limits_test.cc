// The admin endpoint's limits, each exercised by a raw-socket or curl
// client that the limit must stop: trickling, silent, oversized, flooding
// and slow-reading clients, and 64 concurrent scrapers during heavy
// contention that must all be answered.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "admin_test_client.h"
#include "lockprof/lockprof.h"
#include "lockprof/server/handlers/delta_handlers.h"
#include "lockprof/server/httplib/connection_guard.h"
#include "test_util.h"

namespace {

using lockprof::AdminServerOptions;
using lockprof::admin_test::AskForMoreThanItReads;
using lockprof::admin_test::ClosedByServer;
using lockprof::admin_test::Connect;
using lockprof::admin_test::Curl;
using lockprof::admin_test::ManyAddresses;
using lockprof::admin_test::Options;
using lockprof::admin_test::SecondsSince;
using lockprof::admin_test::Server;
using lockprof::admin_test::ServerSideConnections;
using lockprof::admin_test::ThreadCount;
using lockprof::admin_test::TrickleUntilCut;
using lockprof::admin_test::WarmUp;
using lockprof::testing::NowNanos;
using lockprof::testing::ParseProfile;
using lockprof::testing::RunCommand;
using lockprof::testing::WaitFor;
using lockprof::testing::WriteTempFile;

ABSL_ATTRIBUTE_NOINLINE void SecurityTestSection(lockprof::Mutex& mu) {
  std::lock_guard<lockprof::Mutex> g(mu);
  std::this_thread::sleep_for(std::chrono::microseconds(200));
}

// Sends `head` at once, then trickles `trickled` (then 'a's) a byte at a
// time, faster than the per-read timeout; the whole-request deadline
// (`read_timeout_ms` 1500) must cut the connection.
void ExpectCutAtTheRequestDeadline(const std::string& head, const std::string& trickled) {
  Server s(Options([](auto& o) { o.read_timeout_ms = 1500; }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const uint64_t timed_out = lockprof::server::ConnectionsTimedOut();
  const int fd = Connect(s.port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), ssize_t(head.size()));
  const int64_t start = NowNanos();
  const bool closed = TrickleUntilCut(fd, trickled, 300, 15);
  const double elapsed = SecondsSince(start);
  close(fd);
  EXPECT_TRUE(closed) << "still connected after " << elapsed << " s";
  EXPECT_LT(elapsed, 10.0);  // Deadline 1.5 s; generous margin for a loaded machine.
  EXPECT_GT(lockprof::server::ConnectionsTimedOut(), timed_out);
  EXPECT_EQ(Curl(s.url("/debug/pprof/")), 200);
}

// A client that trickles its request faster than the per-read timeout but
// never finishes it is cut off by the whole-request deadline.
TEST(AdminLimitsTest, DropsSlowlorisClient) {
  ExpectCutAtTheRequestDeadline("", "GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\nX-Slow: ");
}

// A body trickled after a complete head is under the same deadline: the
// head alone ended it, and each byte within the read timeout kept the
// connection, and a thread, for as long as the client liked.
TEST(AdminLimitsTest, DropsAClientThatTricklesItsBody) {
  ExpectCutAtTheRequestDeadline(
      "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", "");
}

// A client that connects and never sends anything is dropped too (this one
// the per-read timeout alone would also catch).
TEST(AdminLimitsTest, DropsSilentClient) {
  Server s(Options([](auto& o) { o.read_timeout_ms = 1000; }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const int fd = Connect(s.port());
  ASSERT_GE(fd, 0);
  const int64_t start = NowNanos();
  EXPECT_TRUE(ClosedByServer(fd, 10000));
  EXPECT_LT(SecondsSince(start), 10.0);
  close(fd);
}

TEST(AdminLimitsTest, RefusesOversizedRequests) {
  Server s(Options([](auto& o) { o.max_request_bytes = 64 << 10; }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  // A body over the limit (addresses for /symbol, as go tool pprof posts).
  std::string addresses;
  while (addresses.size() < (200u << 10)) addresses += "0x401000+";
  const std::string body_file = WriteTempFile(addresses);
  EXPECT_EQ(Curl("-H 'Content-Type: application/octet-stream' --data-binary @" + body_file + " " +
                 s.url("/debug/pprof/symbol")),
            413);
  std::remove(body_file.c_str());
  // Under the limit, the same request is served.
  const std::string small_file = WriteTempFile(addresses.substr(0, 32 << 10) + "0x401000");
  EXPECT_EQ(Curl("-H 'Content-Type: application/octet-stream' --data-binary @" + small_file + " " +
                 s.url("/debug/pprof/symbol")),
            200);
  std::remove(small_file.c_str());
  // One header line over httplib's 8 KiB, in a head under the 64 KiB
  // max_request_head_bytes: httplib's own 400 (malformed), not 431.
  EXPECT_EQ(Curl("-H 'X-Big: " + std::string(10000, 'a') + "' " + s.url("/metrics")), 400);
  // Headers of 7 KB each (every line within httplib's limit): 56 KB of them
  // is a head under the default max_request_head_bytes and is served; 70 KB
  // is over it and answers 431.
  auto headers = [](int n) {
    std::string h;
    for (int i = 0; i < n; ++i)
      h += "-H 'X-H" + std::to_string(i) + ": " + std::string(7000, 'a') + "' ";
    return h;
  };
  EXPECT_EQ(Curl(headers(8) + s.url("/metrics")), 200);
  EXPECT_EQ(Curl(headers(10) + s.url("/metrics")), 431);
  // A request target over httplib's 8 KiB.
  EXPECT_EQ(Curl("'" + s.url("/debug/pprof/mutex?x=" + std::string(9000, 'a')) + "'"), 414);
  // The server still serves others.
  std::string body;
  EXPECT_EQ(Curl(s.url("/debug/pprof/mutex"), &body), 200);
  ParseProfile(body);
}

// At the cap (one connection here), a new connection evicts the oldest that
// awaits a request (it connected and says nothing) at once, without waiting
// for its read deadline (20 s here), and is served: idle connections cannot
// keep every client out. While the only connection is busy (its request is
// being handled: a window), a new one is closed at once instead.
TEST(AdminLimitsTest, AtTheCapAnIdleConnectionMakesRoomAndABusyOneDoesNot) {
  Server s(Options([](auto& o) {
    o.max_threads = 1;
    o.max_connections = 1;
    o.read_timeout_ms = 20000;
  }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  ASSERT_EQ(WarmUp(s.url("/debug/pprof/")), 200);
  const auto open_becomes = [](uint64_t n) {
    return WaitFor([n] { return lockprof::server::ConnectionsOpen() == n; }, 10000);
  };
  ASSERT_TRUE(open_becomes(0));
  const uint64_t refused = lockprof::server::ConnectionsRefused();
  const int silent = Connect(s.port());  // Takes the only slot, says nothing.
  ASSERT_GE(silent, 0);
  ASSERT_TRUE(open_becomes(1));
  const int64_t start = NowNanos();
  EXPECT_EQ(Curl(s.url("/debug/pprof/")), 200);
  EXPECT_LT(SecondsSince(start), 5.0);  // A liveness bound: the deadline would take 20 s.
  EXPECT_TRUE(ClosedByServer(silent, 5000)) << "the idle connection was not evicted";
  EXPECT_EQ(lockprof::server::ConnectionsRefused(), refused + 1);
  close(silent);

  ASSERT_TRUE(open_becomes(0));
  const int window = Connect(s.port());
  ASSERT_GE(window, 0);
  const std::string request = "GET /debug/pprof/mutex?seconds=5 HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(window, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
  ASSERT_TRUE(WaitFor([] { return lockprof::server::ActiveDeltaWaits() == 1; }, 10000));
  const int extra = Connect(s.port());
  // (A connect may already fail when the server's reset overtakes it.)
  EXPECT_TRUE(extra < 0 || ClosedByServer(extra, 5000)) << "a connection over the cap was served";
  EXPECT_FALSE(ClosedByServer(window, 0)) << "the busy connection was dropped instead";
  EXPECT_EQ(lockprof::server::ConnectionsRefused(), refused + 2);
  if (extra >= 0) close(extra);
  close(window);
}

// Windows (?seconds=N) hold a thread each for their length: past half the
// threads, a window is refused at once with 503, and /metrics is answered
// however many windows are asked for.
TEST(AdminLimitsTest, WindowsLeaveThreadsForOtherRequests) {
  Server s(Options([](auto& o) { o.max_threads = 4; }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  ASSERT_EQ(WarmUp(s.url("/debug/pprof/")), 200);
  std::vector<int> windows;
  for (int i = 0; i < 2; ++i) {
    const int fd = Connect(s.port());
    ASSERT_GE(fd, 0);
    const std::string request = "GET /debug/pprof/mutex?seconds=60 HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
    windows.push_back(fd);
  }
  ASSERT_TRUE(WaitFor([] { return lockprof::server::ActiveDeltaWaits() == 2; }, 10000));
  std::string body, headers;
  const int64_t refused_at = NowNanos();
  EXPECT_EQ(Curl("'" + s.url("/debug/pprof/mutex?seconds=60") + "'", &body, nullptr, &headers),
            503);
  EXPECT_LT(SecondsSince(refused_at), 5.0);  // Refused, not waited for.
  EXPECT_NE(headers.find("Retry-After: 10"), std::string::npos) << headers;
  EXPECT_NE(body.find("too many profile windows open at once (at most 2)"), std::string::npos)
      << body;
  EXPECT_EQ(Curl("'" + s.url("/debug/lockprof/profile.json?name=mutex&seconds=60") + "'"), 503);
  EXPECT_EQ(Curl("'" + s.url("/metrics") + "'"), 200);
  for (const int fd : windows) close(fd);
  EXPECT_TRUE(WaitFor([] { return lockprof::server::ActiveDeltaWaits() == 0; }, 10000));
}

// Far more connections than the cap, all silent: the server's side holds at
// most twice max_connections sockets (a connection evicted for a newer one
// is shut at once, and closed when a thread takes it up) and max_threads
// threads, refuses or evicts the rest at once or drops them at the
// deadline, and keeps answering a real client.
// (The flood takes a few seconds to connect: the listen backlog is 5 and a
// dropped SYN is retried after 1 s.)
TEST(AdminLimitsTest, BoundsConnectionFlood) {
  constexpr int kThreads = 4, kConnections = 8, kFlood = 40;
  AdminServerOptions opts;
  opts.max_threads = kThreads;
  opts.read_timeout_ms = 1000;
  opts.max_connections = kConnections;
  Server s(opts);
  ASSERT_TRUE(s.status().ok()) << s.status();
  EXPECT_EQ(Curl(s.url("/debug/pprof/")), 200);  // Starts the accept thread and watchdog.
  const int threads_before = ThreadCount();
  const uint64_t refused = lockprof::server::ConnectionsRefused();
  const uint64_t timed_out = lockprof::server::ConnectionsTimedOut();
  auto ended = [&] {
    return lockprof::server::ConnectionsRefused() - refused +
           lockprof::server::ConnectionsTimedOut() - timed_out;
  };
  std::vector<int> flood;
  int most_server_side = 0, most_threads = 0, failed = 0;
  for (int i = 0; i < kFlood; ++i) {
    // A connect may fail (EPIPE, ECONNRESET) when the server's reset of a
    // refused connection overtakes it: refused all the same.
    const int fd = Connect(s.port());
    if (fd < 0) {
      ++failed;
      continue;
    }
    flood.push_back(fd);
    most_server_side = std::max(most_server_side, ServerSideConnections(s.port()));
    most_threads = std::max(most_threads, ThreadCount());
  }
  // Every flood connection is refused or dropped at its deadline, but for
  // at most kConnections still queued or served.
  const int64_t start = NowNanos();
  const uint64_t must_end = uint64_t(kFlood - kConnections - failed);
  while (ended() < must_end && SecondsSince(start) < 20) {
    most_server_side = std::max(most_server_side, ServerSideConnections(s.port()));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(ended(), must_end);
  EXPECT_LT(failed, kFlood - kConnections);
  EXPECT_GT(lockprof::server::ConnectionsRefused(), refused);
  // (+1: a connection just accepted, before it is refused.)
  EXPECT_LE(most_server_side, 2 * kConnections + 1);
  // The threads that were idle before may serve the flood too.
  EXPECT_LE(most_threads, threads_before + kThreads);
  // A real client is answered within a bound: the flood's admitted
  // connections are dropped 1 s after they are taken up.
  int status = 0;
  const int64_t retry_start = NowNanos();
  while ((status = Curl(s.url("/debug/pprof/"))) != 200 && SecondsSince(retry_start) < 20) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 200);
  for (int fd : flood) close(fd);
}

// A client that takes its response too slowly (reading a little, often
// enough that no single write times out) is cut off by the response
// deadline; without it, this 2 MB answer would take the client ~30 s.
TEST(AdminLimitsTest, DropsSlowReader) {
  Server s(Options([](auto& o) {
    o.write_timeout_ms = 2000;
    o.max_request_bytes = 4 << 20;
  }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const std::string addresses = ManyAddresses();
  const std::string body_file = WriteTempFile(addresses);
  std::string full;
  ASSERT_EQ(Curl("-H 'Content-Type: application/octet-stream' --data-binary @" + body_file + " " +
                     s.url("/debug/pprof/symbol"),
                 &full),
            200);
  std::remove(body_file.c_str());
  ASSERT_GT(full.size(), 2u << 20);

  const int fd = AskForMoreThanItReads(s.port(), addresses);
  size_t received = 0;
  const int64_t start = NowNanos();
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 1000) == 0 && SecondsSince(start) < 60) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0 || SecondsSince(start) > 60) break;
    received += size_t(n);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double elapsed = SecondsSince(start);
  close(fd);
  EXPECT_LT(received, full.size());
  EXPECT_LT(elapsed, 20.0);
  std::printf("slow reader: %zu of %zu bytes in %.1f s\n", received, full.size(), elapsed);
}

// 64 concurrent scrapers during heavy contention all get complete, valid
// answers.
TEST(AdminLimitsTest, SixtyFourConcurrentScrapers) {
  lockprof::testing::ScopedRates rates(1, lockprof::testing::ScopedRates::kKeep,
                                       lockprof::testing::ScopedRates::kKeep);
  Server s({});
  ASSERT_TRUE(s.status().ok()) << s.status();
  static lockprof::Mutex mu{"security.test"};
  std::atomic<bool> stop{false};
  std::vector<std::thread> contenders;
  for (int t = 0; t < 4; ++t) {
    contenders.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) SecurityTestSection(mu);
    });
  }
  constexpr int kClients = 64;
  std::atomic<int> good_profiles{0}, good_metrics{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      std::string body;
      if (Curl(s.url("/debug/pprof/mutex"), &body) == 200) {
        if (ParseProfile(body).sample_type_size() == 2) good_profiles.fetch_add(1);
      }
      if (Curl(s.url("/metrics"), &body) == 200 &&
          body.find("lockprof_lock_contentions_total") != std::string::npos) {
        good_metrics.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  stop = true;
  for (auto& t : contenders) t.join();
  EXPECT_EQ(good_profiles.load(), kClients);
  EXPECT_EQ(good_metrics.load(), kClients);
  // The contention of this test was recorded and is served.
  std::string body;
  ASSERT_EQ(Curl(s.url("/debug/pprof/mutex"), &body), 200);
  EXPECT_GT(lockprof::testing::SumValues(ParseProfile(body), 0, "SecurityTestSection"), 0);
}

}  // namespace
