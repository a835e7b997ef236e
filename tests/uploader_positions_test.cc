// Each upload carries only what is new since the process's previous upload
// of that profile, whichever uploader sent it (agent/pyroscope/
// upload_positions.h): Pyroscope adds up what it receives, so history sent
// twice is counted twice.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/base/attributes.h"
#include "lifecycle_util.h"
#include "lockprof/agent/pyroscope/upload_positions.h"
#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "test_util.h"

// The forked child below starts the uploader's threads.
LOCKPROF_ALLOW_THREADS_AFTER_FORK()

// Outside namespace lockprof: this frame must stay in the profiles.
ABSL_ATTRIBUTE_NOINLINE void PositionsTestHolds(lockprof::Mutex& mu, int n) {
  for (int i = 0; i < n; ++i) {
    mu.lock();
    mu.unlock();
  }
}

namespace {

using lockprof::testing::Receiver;
using lockprof::testing::ScopedRates;
constexpr int kKeep = ScopedRates::kKeep;

lockprof::UploaderOptions HoldUploads(const Receiver& receiver) {
  lockprof::UploaderOptions o;
  o.url = receiver.url();
  o.app_name = "positions-test";
  o.interval = std::chrono::hours(1);  // Only each stop's flush uploads.
  o.profiles = {"hold"};
  return o;
}

// Holds in PositionsTestHolds over every upload received.
int64_t HoldsUploaded(const Receiver& receiver) {
  int64_t holds = 0;
  for (const auto& u : receiver.Uploads()) {
    holds += lockprof::testing::SumValues(
        lockprof::testing::ParseProfile(Receiver::ReadFile(u.profile_path)), 0,
        "PositionsTestHolds");
  }
  return holds;
}

// One uploader's life: started, `holds` holds taken, stopped (which
// uploads what is new).
void UploadAround(const Receiver& receiver, lockprof::Mutex& mu, int holds) {
  ASSERT_TRUE(lockprof::StartUploader(HoldUploads(receiver)).ok());
  PositionsTestHolds(mu, holds);
  lockprof::StopUploader();
}

TEST(UploaderPositionsTest, AnUploaderStartedAgainSendsOnlyWhatIsNew) {
  ScopedRates rates(kKeep, kKeep, 1);
  Receiver receiver;
  lockprof::Mutex mu{"positions.restart"};
  UploadAround(receiver, mu, 100);
  PositionsTestHolds(mu, 50);  // While none runs: in the next upload.
  UploadAround(receiver, mu, 0);
  ASSERT_EQ(receiver.Uploads().size(), 2u);
  EXPECT_EQ(HoldsUploaded(receiver), 150);
  // The second interval starts where the first ended.
  const auto uploads = receiver.Uploads();
  EXPECT_EQ(uploads[1].from(), uploads[0].until());
}

TEST(UploaderPositionsTest, AForkedChildSendsOnlyItsOwn) {
  ScopedRates rates(kKeep, kKeep, 1);
  Receiver receiver;
  lockprof::Mutex mu{"positions.fork"};
  UploadAround(receiver, mu, 100);
  PositionsTestHolds(mu, 30);  // The parent's, not yet uploaded: not the child's.
  const auto child = lockprof::testing::RunInForkedChild([&](int) {
    if (!lockprof::StartUploader(HoldUploads(receiver)).ok()) return 2;
    PositionsTestHolds(mu, 10);
    lockprof::StopUploader();
    return 0;
  });
  ASSERT_EQ(child.exit_code, 0) << child.output;
  EXPECT_EQ(HoldsUploaded(receiver), 110);
  // The parent's 30 go with its next upload.
  UploadAround(receiver, mu, 0);
  EXPECT_EQ(HoldsUploaded(receiver), 140);
}

// A wall clock stepped back (NTP, a virtual machine resumed) between two
// uploads: the interval still ends after it starts, by the time that
// passed, so that the next starts where it ended and Pyroscope takes it
// (it refuses from > until: that interval's data was lost).
TEST(UploaderPositionsTest, AWallClockSteppedBackStillEndsTheIntervalAfterItStarts) {
  using lockprof::agent::IntervalEnd;
  const int64_t from = 1'800'000'000'000'000'000;
  EXPECT_EQ(IntervalEnd(from, from + 15'000'000'000, 15'000'000'000), from + 15'000'000'000);
  EXPECT_EQ(IntervalEnd(from, from - 60'000'000'000, 15'000'000'000), from + 15'000'000'000);
  EXPECT_EQ(IntervalEnd(from, from, 0), from + 1);
}

// An IPv6 address with letters in it (here 127.0.0.1, IPv4-mapped, so that
// the receiver on 127.0.0.1 answers): cpp-httplib's client takes such an
// address from host and port, not from an origin string, where it looked
// the whole "[::ffff:7f00:1]:port" up as a host name and never connected.
TEST(UploaderPositionsTest, UploadsToAnIpv6AddressWithLetters) {
  const int probe = socket(AF_INET6, SOCK_STREAM, 0);
  if (probe < 0) GTEST_SKIP() << "the kernel has no IPv6";
  close(probe);
  Receiver receiver;
  lockprof::UploaderOptions o = HoldUploads(receiver);
  const std::string v4 = "127.0.0.1";
  o.url.replace(o.url.find(v4), v4.size(), "[::ffff:7f00:1]");
  ASSERT_TRUE(lockprof::StartUploader(o).ok()) << o.url;
  lockprof::StopUploader();
  EXPECT_EQ(receiver.Uploads().size(), 1u) << o.url;
}

}  // namespace
