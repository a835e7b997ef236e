// The demo end to end, as a user would run it: the README's commands against
// a running lockprof-demo whose binary has been deleted, so go tool pprof can
// only use the names inside the profile.
#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "test_util.h"

namespace {

using lockprof::testing::Child;
using lockprof::testing::GoPprof;
using lockprof::testing::PortFromLine;
using lockprof::testing::RunCommand;

// First function row of `go tool pprof -top` output.
std::string TopFunction(const std::string& top) {
  std::istringstream in(top);
  std::string line;
  bool table = false;
  while (std::getline(in, line)) {
    if (line.find("flat%") != std::string::npos) {
      table = true;
      continue;
    }
    if (table && !line.empty()) return line;
  }
  return "";
}

class DemoTest : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& extra) {
    // Run a copy, then delete it: profiles must carry their own symbols.
    dir_ = RunCommand("mktemp -d");
    dir_.erase(dir_.find_last_not_of('\n') + 1);
    std::string copy = dir_ + "/lockprof-demo";
    RunCommand(std::string("cp ") + LOCKPROF_DEMO_PATH + " " + copy);
    std::vector<std::string> argv = {copy, "--addr=127.0.0.1:0", "--duration=120"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    demo_ = std::make_unique<Child>(argv);
    std::string line = demo_->WaitForLine("admin endpoint:");
    port_ = PortFromLine(line);
    ASSERT_GT(port_, 0) << line;
    RunCommand("rm -rf " + dir_);
  }
  std::string Url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string dir_;
  std::unique_ptr<Child> demo_;
  int port_ = 0;
};

TEST_F(DemoTest, MutexProfileNamesCacheSetWithBinaryDeleted) {
  // Few readers and a long update: on 2 busy cores, readers preempted inside
  // Get must not rival the writers' deliberate 20 ms holds.
  Start({"--readers=4", "--writers=2", "--slow-ms=20"});
  std::this_thread::sleep_for(std::chrono::seconds(3));
  int status;
  std::string top = GoPprof("-top -sample_index=delay " + Url("/debug/pprof/mutex"), &status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_NE(TopFunction(top).find("demo::Cache::Set"), std::string::npos) << top;

  std::string raw = GoPprof("-raw " + Url("/debug/pprof/mutex"), &status);
  ASSERT_EQ(status, 0) << raw;
  EXPECT_NE(raw.find("PeriodType: contentions count"), std::string::npos) << raw;
  EXPECT_NE(raw.find("contentions/count delay/nanoseconds"), std::string::npos) << raw;

  // The block profile charges the waiters: readers in Cache::Get.
  std::string block = GoPprof("-top -sample_index=delay " + Url("/debug/pprof/block"), &status);
  ASSERT_EQ(status, 0) << block;
  EXPECT_NE(TopFunction(block).find("demo::Cache::Get"), std::string::npos) << block;
}

TEST_F(DemoTest, FixedMovesTheDelayOutOfCacheSet) {
  Start({"--readers=4", "--writers=2", "--slow-ms=20", "--fixed"});
  std::this_thread::sleep_for(std::chrono::seconds(3));
  int status;
  std::string top = GoPprof("-top -sample_index=delay " + Url("/debug/pprof/mutex"), &status);
  ASSERT_EQ(status, 0) << top;
  // With the slow work outside the lock, no critical section is slow: the
  // profile is small, and SlowProcess never appears under a lock.
  EXPECT_EQ(top.find("SlowProcess"), std::string::npos) << top;
}

}  // namespace
