// The uploader's deadlines hold while a connect hangs: a server behind a
// firewall that drops packets (here a listener whose accept queue is full,
// so that the kernel drops further SYNs). cpp-httplib's own abort waits for
// the connect; the uploader shuts the socket down instead. Nor does an exit
// wait out a retry's backoff.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "lifecycle_util.h"
#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "test_util.h"

namespace {

using Clock = std::chrono::steady_clock;

class BlackHole {
 public:
  BlackHole() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(listener_, 0);
    socklen_t len = sizeof a;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    // Fill the accept queue (a backlog of 0 holds one), never accepting.
    for (int i = 0; i < 3; ++i) {
      const int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
      fillers_.push_back(c);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ~BlackHole() {
    for (int c : fillers_) close(c);
    close(listener_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

lockprof::UploaderOptions Options(const BlackHole& hole) {
  lockprof::UploaderOptions o;
  o.url = hole.url();
  o.app_name = "abort-test";
  o.interval = std::chrono::milliseconds(200);
  o.request_timeout = std::chrono::seconds(10);  // The default.
  o.shutdown_timeout = std::chrono::seconds(1);
  o.profiles = {"mutex"};
  return o;
}

TEST(UploaderAbortTest, StopKeepsItsDeadlineWhileAConnectHangs) {
  BlackHole hole;
  ASSERT_TRUE(lockprof::StartUploader(Options(hole)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // Connecting now.
  const auto start = Clock::now();
  lockprof::StopUploader();
  const auto took = Clock::now() - start;
  // The shutdown deadline (1 s), not the connect's timeout (10 s); a
  // generous margin for a loaded machine.
  EXPECT_LT(took, std::chrono::seconds(4))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
}

// A process that exits while its uploader waits out a retry's backoff (the
// usual state while Pyroscope fails) retries nothing, as an exit promises,
// and does not wait for the backoff. Before, the exit waited the whole
// shutdown deadline (5 s here), or sent the retry when the backoff was
// shorter than that.
TEST(UploaderAbortTest, AnExitDuringARetrysBackoffRetriesNothing) {
  lockprof::testing::Receiver receiver({"-mode=500"});
  const auto start = Clock::now();
  const auto child = lockprof::testing::RunInForkedChild(
      [&receiver](int) {
        lockprof::UploaderOptions o;
        o.url = receiver.url();
        o.app_name = "exit-in-backoff";
        o.interval = std::chrono::milliseconds(100);
        o.backoff_base = std::chrono::seconds(10);
        o.profiles = {"mutex"};
        if (!lockprof::StartUploader(o).ok()) return 2;
        for (int i = 0; i < 3000 && lockprof::agent::UploadRetries() == 0; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (lockprof::agent::UploadRetries() == 0) return 3;  // Never in a backoff.
        std::exit(0);
        return 0;
      },
      60);
  const auto took = Clock::now() - start;
  EXPECT_EQ(child.exit_code, 0) << child.output;
  EXPECT_LT(took, std::chrono::seconds(4))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
  // The first interval's one attempt (the last interval, empty, is not sent
  // at exit).
  EXPECT_EQ(receiver.Requests().size(), 1u);
}

// At the process's thread limit the uploader does not start, and says
// why: its threads' std::system_error escaped into the caller (std::terminate
// for LOCKPROF_PYROSCOPE_URL, which starts it before main).
TEST(UploaderAbortTest, AtTheThreadLimitTheUploaderDoesNotStartAndSaysWhy) {
  const auto child = lockprof::testing::RunInForkedChild(
      [](int out_fd) {
        if (const int failed = lockprof::testing::AtThreadLimit(); failed != 0) return failed;
        lockprof::UploaderOptions o;
        o.url = "http://127.0.0.1:9";
        o.app_name = "thread-limit";
        const absl::Status s = lockprof::StartUploader(o);
        lockprof::testing::WriteAll(out_fd, s.ToString());
        if (s.code() != absl::StatusCode::kUnavailable || lockprof::UploaderRunning()) return 1;
        return 0;
      },
      60);
  EXPECT_FALSE(child.timed_out);
  EXPECT_EQ(child.exit_code, 0) << child.output << " (3-5: AtThreadLimit)";
}

}  // namespace
