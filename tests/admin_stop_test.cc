// Stopping the admin server, and with it the program's exit (its exit
// handler stops the server), waits for no client that misbehaves: clients
// that have not delivered a request are cut at once, responses in progress
// get a second.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "admin_test_client.h"
#include "lockprof/server/httplib/connection_guard.h"
#include "test_util.h"

namespace {

using lockprof::admin_test::AskForMoreThanItReads;
using lockprof::admin_test::ClosedByServer;
using lockprof::admin_test::Connect;
using lockprof::admin_test::ManyAddresses;
using lockprof::admin_test::Options;
using lockprof::admin_test::SecondsSince;
using lockprof::admin_test::Server;
using lockprof::testing::NowNanos;
using lockprof::testing::WaitFor;

// Stopping the server does not wait for clients that have not delivered
// their request (one silent, one trickling its headers): they are cut at
// once. Before, the stop waited for their request deadline (8 s here).
TEST(AdminStopTest, DoesNotWaitForRequestsNotYetDelivered) {
  auto s = std::make_unique<Server>(Options([](auto& o) { o.read_timeout_ms = 8000; }));
  ASSERT_TRUE(s->status().ok()) << s->status();
  // The server's own first request (it answers one as it starts) may still
  // count until its task has closed it.
  ASSERT_TRUE(WaitFor([] { return lockprof::server::ConnectionsOpen() == 0; }));
  const int silent = Connect(s->port());
  const int trickling = Connect(s->port());
  ASSERT_GE(silent, 0);
  ASSERT_GE(trickling, 0);
  const std::string part = "GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(send(trickling, part.data(), part.size(), MSG_NOSIGNAL), ssize_t(part.size()));
  ASSERT_TRUE(WaitFor([] { return lockprof::server::ConnectionsOpen() == 2; }));
  const int64_t start = NowNanos();
  s.reset();
  const double stop_s = SecondsSince(start);
  EXPECT_LT(stop_s, 2.0);
  EXPECT_TRUE(ClosedByServer(silent, 1000));
  EXPECT_TRUE(ClosedByServer(trickling, 1000));
  close(silent);
  close(trickling);
}

// Nor does a stop wait out the write deadline (8 s here) of a client that
// does not read its answer: a response in progress has a second.
TEST(AdminStopTest, WaitsASecondAtMostForAClientThatDoesNotRead) {
  auto s = std::make_unique<Server>(Options([](auto& o) {
    o.write_timeout_ms = 8000;
    o.max_request_bytes = 4 << 20;
  }));
  ASSERT_TRUE(s->status().ok()) << s->status();
  ASSERT_TRUE(WaitFor([] { return lockprof::server::ConnectionsOpen() == 0; }));  // As above.
  const int fd = AskForMoreThanItReads(s->port(), ManyAddresses());
  ASSERT_TRUE(WaitFor([] { return lockprof::server::ConnectionsOpen() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // Answering by now.
  const int64_t start = NowNanos();
  s.reset();
  EXPECT_LT(SecondsSince(start), 3.0);
  close(fd);
}

}  // namespace
