// Labels on samples: the lock's name, read/write mode and the user's
// ScopedLabels, read back with go tool pprof -tagfocus / -tags.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "lockprof/agent/record/record.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::GoPprof;
using lockprof::testing::ParseProfile;
using lockprof::testing::ReadFile;
using lockprof::testing::SumValues;
using lockprof::testing::SumValuesWithLabel;
using lockprof::testing::WriteTempFile;
using Profile = perftools::profiles::Profile;

std::string HoldProfileFile() { return lockprof::testing::FetchProfileToFile("hold"); }

// Runs go tool pprof with `args` on `file`, writing the filtered profile.
Profile Filtered(const std::string& args, const std::string& file) {
  const std::string out = WriteTempFile("", ".pb.gz");
  int status = 0;
  const std::string log = GoPprof("-proto -output " + out + " " + args + " " + file, &status);
  EXPECT_EQ(status, 0) << log;
  return ParseProfile(ReadFile(out));
}

// The same code, reached from two endpoints.
ABSL_ATTRIBUTE_NOINLINE void LabelsTestHandle(lockprof::Mutex& mu, int64_t hold_us) {
  std::lock_guard<lockprof::Mutex> lock(mu);
  std::this_thread::sleep_for(std::chrono::microseconds(hold_us));
}

class LabelsTest : public ::testing::Test {
 protected:
  lockprof::testing::ScopedRates rates_{lockprof::testing::ScopedRates::kKeep,
                                        lockprof::testing::ScopedRates::kKeep, 1};
};

TEST_F(LabelsTest, TagfocusSelectsUserLabelsAndLockNames) {
  lockprof::Mutex cart_mu{"labels.cart"}, home_mu{"labels.home"};
  std::thread worker([&] {  // A fresh thread: it samples at the new rate.
    for (int i = 0; i < 20; ++i) {
      {
        lockprof::ScopedLabels labels({{"endpoint", "/api/cart"}});
        LabelsTestHandle(cart_mu, 2000);
      }
      lockprof::ScopedLabels labels({{"endpoint", "/api/home"}});
      LabelsTestHandle(home_mu, 500);
    }
  });
  worker.join();
  const std::string file = HoldProfileFile();
  const Profile all = ParseProfile(ReadFile(file));
  const int64_t cart = SumValuesWithLabel(all, 1, "endpoint", "/api/cart");
  const int64_t home = SumValuesWithLabel(all, 1, "endpoint", "/api/home");
  EXPECT_EQ(SumValuesWithLabel(all, 0, "endpoint", "/api/cart"), 20);
  EXPECT_GE(cart, 20 * 2'000'000);
  EXPECT_GE(home, 20 * 500'000);

  // -tagfocus on the user's label keeps exactly the samples recorded in scope.
  const Profile focused = Filtered("-tagfocus endpoint=/api/cart", file);
  EXPECT_EQ(SumValues(focused, 1, "LabelsTestHandle"), cart);
  EXPECT_EQ(SumValuesWithLabel(focused, 1, "endpoint", "/api/home"), 0);
  // -tagfocus on the lock's name: the same samples, by the other label.
  const Profile by_lock = Filtered("-tagfocus lock=labels.cart", file);
  EXPECT_EQ(SumValues(by_lock, 1), cart);

  int status = 0;
  const std::string tags = GoPprof("-tags " + file, &status);
  ASSERT_EQ(status, 0) << tags;
  EXPECT_NE(tags.find("/api/cart"), std::string::npos) << tags;
  EXPECT_NE(tags.find("labels.home"), std::string::npos) << tags;
}

TEST_F(LabelsTest, NestedScopesAddAndOverride) {
  lockprof::Mutex mu{"labels.nested"};
  std::thread worker([&] {
    lockprof::ScopedLabels outer({{"tenant", "acme"}, {"endpoint", "/outer"}});
    lockprof::ScopedLabels inner({{"endpoint", "/inner"}});
    LabelsTestHandle(mu, 100);
  });
  worker.join();
  const std::string file = HoldProfileFile();
  const Profile p = Filtered("-tagfocus lock=labels.nested", file);
  ASSERT_EQ(p.sample_size(), 1);
  EXPECT_EQ(SumValuesWithLabel(p, 0, "tenant", "acme"), 1);
  EXPECT_EQ(SumValuesWithLabel(p, 0, "endpoint", "/inner"), 1);
  EXPECT_EQ(SumValuesWithLabel(p, 0, "endpoint", "/outer"), 0);
}

// What a reader/writer lock reports: shared holds carry mode=read, exclusive
// ones mode=write, so -tagfocus mode=read isolates readers.
ABSL_ATTRIBUTE_NOINLINE void LabelsTestRecordHolds() {
  using lockprof::agent::EventTags;
  using lockprof::agent::LockMode;
  lockprof::agent::RecordHold(3000, 1, EventTags{"labels.rw", LockMode::kRead},
                              __builtin_frame_address(0));
  lockprof::agent::RecordHold(5000, 1, EventTags{"labels.rw", LockMode::kWrite},
                              __builtin_frame_address(0));
}

TEST_F(LabelsTest, ReadAndWriteHoldsAreLabelled) {
  LabelsTestRecordHolds();
  const std::string file = HoldProfileFile();
  // Only this test's stack: with the interposer linked in, the process's
  // other locks (OpenSSL's rwlocks, taken before main) may be sampled too.
  const std::string mine = "-focus ReadAndWriteHoldsAreLabelled ";
  EXPECT_EQ(SumValues(Filtered(mine + "-tagfocus mode=read", file), 1), 3000);
  EXPECT_EQ(SumValues(Filtered(mine + "-tagfocus mode=write", file), 1), 5000);
}

}  // namespace
