// fork() with lockprof's services running: a forked child does not have the
// parent's admin server or uploader threads, so it must forget them, close
// its copies of the server's sockets (leaving the parent's alone), start
// its own, and exit without waiting for the parent's.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/attributes.h"
#include "admin_test_client.h"
#include "lifecycle_util.h"
#include "lockprof/agent/pyroscope/upload_positions.h"
#include "lockprof/agent/uploader.h"
#include "pyroscope_receiver.h"

// The children start the services' threads.
LOCKPROF_ALLOW_THREADS_AFTER_FORK()

namespace {

using lockprof::admin_test::SocketsOnPort;
using lockprof::testing::AllRatesAtOne;
using lockprof::testing::HttpGet;
using lockprof::testing::ParseProfile;
using lockprof::testing::Receiver;
using lockprof::testing::RunInForkedChild;
using lockprof::testing::SumValues;
using lockprof::testing::WriteAll;

ABSL_ATTRIBUTE_NOINLINE void ForkChildHolds(lockprof::Mutex* mu, std::atomic<bool>* held) {
  lockprof::MutexLock lock(mu);
  held->store(true);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// Contention in the calling process: another thread holds `mu` for 50 ms
// while this one waits for it, charged to ForkChildHolds.
void Contend(lockprof::Mutex* mu) {
  std::atomic<bool> held{false};
  std::thread holder([&] { ForkChildHolds(mu, &held); });
  while (!held.load()) std::this_thread::yield();
  { lockprof::MutexLock lock(mu); }
  holder.join();
}

// Exit codes of the children, for the parent's messages.
enum ChildFailure {
  kInheritedSocketOpen = 10,
  kStartFailed = 11,
  kSamePort = 12,
  kRequestFailed = 13,
  kWriteFailed = 14,
};

// The child of a process serving on port P closes its copies of P's sockets,
// starts its own server, serves its own contention on it, and exits through
// exit(), whose handler stops its server. The parent still serves on P.
// Without the child fork handler, StartAdminServer in the child says
// "admin server already running", and the child keeps P's listening socket.
TEST(ForkServicesTest, ChildStartsItsOwnAdminServer) {
  AllRatesAtOne rates;
  ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  const int parent_port = lockprof::AdminServerPort();
  // A program that forks and execs must not pass the listening socket on.
  const int listening = lockprof::admin_test::ListeningSocket(parent_port);
  ASSERT_GE(listening, 0);
  EXPECT_NE(fcntl(listening, F_GETFD) & FD_CLOEXEC, 0);
  lockprof::Mutex mu{"fork.services"};
  auto child = RunInForkedChild([&](int fd) -> int {
    if (SocketsOnPort(parent_port) != 0) std::exit(kInheritedSocketOpen);
    const absl::Status started = lockprof::StartAdminServer({"127.0.0.1", 0});
    if (!started.ok()) {
      WriteAll(fd, started.ToString());
      std::exit(kStartFailed);
    }
    const int port = lockprof::AdminServerPort();
    if (port == parent_port) std::exit(kSamePort);
    Contend(&mu);
    int status = 0;
    const std::string profile = HttpGet(port, "/debug/pprof/mutex", &status);
    if (status != 200) std::exit(kRequestFailed);
    // exit(), not _exit(): the exit handler stops this child's server.
    std::exit(WriteAll(fd, profile) ? 0 : kWriteFailed);
  });
  ASSERT_FALSE(child.timed_out) << "the forked child hung";
  ASSERT_EQ(child.exit_code, 0) << child.output;
  EXPECT_GT(SumValues(ParseProfile(child.output), 1, "ForkChildHolds"), 0);
  int status = 0;
  HttpGet(parent_port, "/debug/pprof/cmdline", &status);
  EXPECT_EQ(status, 200);
  lockprof::StopAdminServer();
}

// Sockets of the program's own that share the server's port number (a UDP
// socket, a TCP listener on another address) stay open in a forked child;
// only the server's are closed. Before, every socket with that local port
// was closed, and the program went on using descriptor numbers that the
// next open() reused.
TEST(ForkServicesTest, TheProgramsOwnSocketsOnTheServersPortStayOpenInAChild) {
  ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  const int port = lockprof::AdminServerPort();
  const int listening = lockprof::admin_test::ListeningSocket(port);
  ASSERT_GE(listening, 0);
  auto bound = [port](int type, const char* ip) {
    const int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    if (type == SOCK_STREAM && listen(fd, 4) != 0) return -1;
    return fd;
  };
  const int udp = bound(SOCK_DGRAM, "127.0.0.1");
  const int tcp = bound(SOCK_STREAM, "127.0.0.2");
  ASSERT_GE(udp, 0);
  ASSERT_GE(tcp, 0);
  auto child = RunInForkedChild([&](int) -> int {
    if (fcntl(listening, F_GETFD) != -1) std::exit(kInheritedSocketOpen);
    return fcntl(udp, F_GETFD) != -1 && fcntl(tcp, F_GETFD) != -1 ? 0 : kWriteFailed;
  });
  ASSERT_FALSE(child.timed_out);
  EXPECT_NE(child.exit_code, kInheritedSocketOpen) << "the server's socket stayed open";
  EXPECT_EQ(child.exit_code, 0) << "the program's own sockets on the port were closed";
  close(udp);
  close(tcp);
  lockprof::StopAdminServer();
}

// A parent thread waiting for an uploader's stop (WaitForStop) at the fork:
// in the child, after one notify_all of the positions' condition variable,
// the next with a waiter of the child's hung, glibc's condition variable
// waiting for the parent's thread, which the child does not have.
TEST(ForkServicesTest, AStartWaitingInTheParentDoesNotHangTheChildsStartsAndStops) {
  lockprof::agent::UploadPositions positions;
  std::mutex mu;
  bool running = false;
  std::thread parent_waiter([&] {
    std::unique_lock<std::mutex> l(mu);
    positions.Take(0);
    positions.WaitForStop(l, [&] { return running; });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // Waiting now.
  auto child = RunInForkedChild(
      [&](int) -> int {
        positions.ForgetInChild();  // What fork()'s child handler does.
        positions.Started();
        for (int round = 0; round < 3; ++round) {
          bool given = false;
          {
            std::lock_guard<std::mutex> l(mu);
            positions.Take(0);  // Out with an uploader: a start waits.
          }
          std::thread waiter([&] {
            std::unique_lock<std::mutex> l(mu);
            positions.WaitForStop(l, [&] { return given; });
          });
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          {
            std::lock_guard<std::mutex> l(mu);
            given = true;
            positions.Give({});
          }
          waiter.join();
        }
        return 0;
      },
      10);
  EXPECT_FALSE(child.timed_out) << "the child hung in a notify_all";
  EXPECT_EQ(child.exit_code, 0);
  {
    std::lock_guard<std::mutex> l(mu);
    running = true;
  }
  positions.Started();
  parent_waiter.join();
}

// The child of a process whose uploader runs starts its own uploader, which
// sends the child's profiles; the child exits through exit() without
// waiting for the parent's uploader. Without the child fork handler,
// StartUploader in the child says "an uploader is running".
TEST(ForkServicesTest, ChildStartsItsOwnUploader) {
  AllRatesAtOne rates;
  Receiver receiver;
  lockprof::UploaderOptions o;
  o.url = receiver.url();
  o.app_name = "fork-parent";
  o.interval = std::chrono::hours(1);  // Only StopUploader's flush uploads.
  o.profiles = {"mutex"};
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  lockprof::Mutex mu{"fork.uploader"};
  auto child = RunInForkedChild([&](int fd) -> int {
    lockprof::UploaderOptions mine = o;
    mine.app_name = "fork-child";
    const absl::Status started = lockprof::StartUploader(mine);
    if (!started.ok()) {
      WriteAll(fd, started.ToString());
      std::exit(kStartFailed);
    }
    Contend(&mu);
    lockprof::StopUploader();  // Sends the child's interval.
    std::exit(0);
  });
  ASSERT_FALSE(child.timed_out) << "the forked child hung";
  ASSERT_EQ(child.exit_code, 0) << child.output;
  lockprof::StopUploader();
  int from_child = 0, from_parent = 0;
  for (const auto& upload : receiver.Uploads("mutex")) {
    const std::string& name = upload.meta.at("name");
    if (name.rfind("fork-child", 0) == 0) {
      ++from_child;
      EXPECT_GT(
          SumValues(ParseProfile(Receiver::ReadFile(upload.profile_path)), 1, "ForkChildHolds"), 0);
    }
    from_parent += name.rfind("fork-parent", 0) == 0;
  }
  EXPECT_EQ(from_child, 1);
  EXPECT_EQ(from_parent, 1);
}

}  // namespace
