// The uploader's name lookup, with the system's real resolver: a program
// whose Pyroscope host is a name runs in a mount namespace of its own, where
// /etc/resolv.conf names a DNS server that never answers (a UDP socket of
// this test that reads nothing) and /etc/hosts is the test's.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "pyroscope_receiver.h"
#include "test_util.h"

namespace {

using lockprof::testing::RunCommand;

// The resolver's own timeout: what a lookup that nobody bounds waits.
constexpr int kResolverTimeoutSeconds = 30;

class UploaderLookupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Needs root: a mount namespace, and a socket on port 53.
    int status = -1;
    RunCommand("unshare --mount true 2>&1", &status);
    if (status != 0) GTEST_SKIP() << "no mount namespace here (not root?)";
    // An address of 127/8 of this test's own: tests run side by side.
    dns_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    for (int last = 2; last < 255 && dns_address_.empty(); ++last) {
      const std::string address = "127.77.77." + std::to_string(last);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(53);
      inet_pton(AF_INET, address.c_str(), &a.sin_addr);
      if (bind(dns_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) dns_address_ = address;
    }
    ASSERT_FALSE(dns_address_.empty()) << "no address of 127.77.77.0/24 to listen on, port 53";
    dir_ = RunCommand("mktemp -d /tmp/lockprof_lookup_XXXXXX");
    dir_.erase(dir_.find_last_not_of('\n') + 1);
    std::ofstream(dir_ + "/resolv.conf")
        << "nameserver " << dns_address_ << "\noptions timeout:" << kResolverTimeoutSeconds
        << " attempts:1\n";
  }
  void TearDown() override {
    if (dns_ >= 0) close(dns_);
    if (!dir_.empty()) RunCommand("rm -rf " + dir_);
  }

  // Runs `lockprof-lifecycle-child contend 100` (which returns from main and
  // leaves the exit flush to the uploader) uploading to `url`, with the
  // namespace's /etc/hosts holding `hosts`. Returns its output; *seconds:
  // how long it ran. Without the preload library of the suite's preload
  // passes: the child links lockprof, and a second copy would start an
  // uploader of its own from the environment, whose exit flush would wait
  // its own deadline after the first.
  std::string RunChild(const std::string& url, const std::string& hosts, double* seconds) {
    std::ofstream(dir_ + "/hosts") << hosts;
    const auto start = std::chrono::steady_clock::now();
    int status = -1;
    const std::string out = RunCommand(
        "unshare --mount sh -c 'mount --make-rprivate / && mount --bind " + dir_ +
            "/resolv.conf /etc/resolv.conf && mount --bind " + dir_ +
            "/hosts /etc/hosts && exec env -u LD_PRELOAD LOCKPROF_PYROSCOPE_URL=" + url +
            " LOCKPROF_PYROSCOPE_INTERVAL=3600 " LOCKPROF_LIFECYCLE_CHILD_PATH " contend 100' 2>&1",
        &status);
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(status, 0) << out;
    return out;
  }

  // Runs the child uploading to a name whose first address is ::1 and whose
  // second is 127.0.0.1, where `receiver` listens: it must get the upload,
  // without the exit waiting long.
  void ExpectUploadThroughTheSecondAddress(const lockprof::testing::Receiver& receiver) {
    double seconds = 0;
    const std::string out =
        RunChild("http://pyroscope.lockprof-test:" + std::to_string(receiver.port()),
                 "::1 pyroscope.lockprof-test\n127.0.0.1 pyroscope.lockprof-test\n", &seconds);
    EXPECT_EQ(receiver.Uploads("mutex").size(), 1u) << out;
    EXPECT_LT(seconds, 9.0) << out;
  }

  int dns_ = -1;
  std::string dns_address_;
  std::string dir_;
};

// A resolver that never answers holds neither the exit flush nor the exit
// beyond the shutdown deadline (5 s by default). Before, the lookup ran
// inside cpp-httplib's connect, which nothing could abort: the program's
// exit waited the resolver's whole timeout.
TEST_F(UploaderLookupTest, AResolverThatNeverAnswersDoesNotHoldTheExit) {
  double seconds = 0;
  const std::string out =
      RunChild("http://pyroscope.lockprof-test.invalid:4040", "127.0.0.1 localhost\n", &seconds);
  EXPECT_LT(seconds, 9.0) << out;
  EXPECT_LT(seconds, kResolverTimeoutSeconds);
}

// A host found by name (here in /etc/hosts, so the DNS server is never
// asked) is uploaded to, and when its first address refuses the connection
// (::1, where nothing listens: the receiver listens on 127.0.0.1 only; the
// resolver puts IPv6's loopback first), the next one is tried.
TEST_F(UploaderLookupTest, AHostByNameIsUploadedToAndItsNextAddressTried) {
  lockprof::testing::Receiver receiver;
  ExpectUploadThroughTheSecondAddress(receiver);
}

// An address that takes no connection and never refuses one: a listening
// socket on [::1]:port whose accept queue is full, so that the kernel drops
// every further SYN.
class Blackhole {
 public:
  explicit Blackhole(int port) {
    listener_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(listener_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(uint16_t(port));
    a.sin6_addr = in6addr_loopback;
    if (bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(listener_, 0) != 0) {
      return;
    }
    // One connection fills a queue of backlog 0; a second one, left
    // connecting, shows that the next SYN is dropped.
    filler_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(filler_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    probe_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    connect(probe_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    pollfd p{probe_, POLLOUT, 0};
    ok_ = errno == EINPROGRESS && poll(&p, 1, 500) == 0;
  }
  ~Blackhole() {
    for (int fd : {probe_, filler_, listener_}) {
      if (fd >= 0) close(fd);
    }
  }
  bool ok() const { return ok_; }

 private:
  int listener_ = -1, filler_ = -1, probe_ = -1;
  bool ok_ = false;
};

// A first address that never answers (a firewalled IPv6 address, a dead
// replica) does not keep the upload from the next one. Before, a connect
// that timed out (unlike one refused) ended the attempt: every upload
// failed, after its whole timeout, while the second address worked.
TEST_F(UploaderLookupTest, AFirstAddressThatNeverAnswersIsPassedOver) {
  lockprof::testing::Receiver receiver;
  Blackhole blackhole(receiver.port());
  ASSERT_TRUE(blackhole.ok()) << "[::1]:" << receiver.port() << " still takes connections";
  ExpectUploadThroughTheSecondAddress(receiver);
}

}  // namespace
