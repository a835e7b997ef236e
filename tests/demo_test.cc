// The demo end to end, as a user would run it: the README's commands against
// a running lockprof-demo whose binary has been deleted, so go tool pprof can
// only use the names inside the profile.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <thread>

#include "test_util.h"

namespace {

using lockprof::testing::Child;
using lockprof::testing::GoPprof;
using lockprof::testing::HttpGet;
using lockprof::testing::ParseProfile;
using lockprof::testing::PortFromLine;
using lockprof::testing::RunCommand;
using lockprof::testing::SumValues;
using lockprof::testing::TopFunction;
using lockprof::testing::WriteTempFile;

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
    demo_ = std::make_unique<Child>(argv, demo_env_);
    std::string line = demo_->WaitForLine("admin endpoint:");
    port_ = PortFromLine(line);
    ASSERT_GT(port_, 0) << line;
    RunCommand("rm -rf " + dir_);
  }
  std::string Url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string dir_;
  std::vector<std::string> demo_env_;  // Extra environment for the demo.
  std::unique_ptr<Child> demo_;
  int port_ = 0;
};

TEST_F(DemoTest, MutexProfileNamesCacheSetWithBinaryDeleted) {
  // Few readers and a long update: on 2 busy cores (under TSan, with other
  // work), readers preempted inside Get must not rival the writers'
  // deliberate 40 ms holds.
  Start({"--readers=4", "--writers=2", "--slow-ms=40"});
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

// README "Did the fix work?": a profile of the demo with its bug, one of the
// fixed demo over the same time, and go tool pprof -base between them. The
// delay charged to Cache::Set (its unlocks: the waits its critical sections
// caused) must fall at least tenfold, and the diff must show it negative.
TEST_F(DemoTest, FixedMovesTheDelayOutOfCacheSet) {
  auto profile_after_3s = [&](const std::vector<std::string>& flags) {
    Start(flags);
    std::this_thread::sleep_for(std::chrono::seconds(3));
    int status = 0;
    const std::string body = HttpGet(port_, "/debug/pprof/mutex", &status);
    EXPECT_EQ(status, 200);
    return body;
  };
  const std::string before = profile_after_3s({"--readers=4", "--writers=2", "--slow-ms=20"});
  const std::string after =
      profile_after_3s({"--readers=4", "--writers=2", "--slow-ms=20", "--fixed"});
  const int64_t set_before = SumValues(ParseProfile(before), 1, "demo::Cache::Set");
  const int64_t set_after = SumValues(ParseProfile(after), 1, "demo::Cache::Set");
  std::printf("Cache::Set delay: %.1f ms with the bug, %.1f ms fixed\n", set_before / 1e6,
              set_after / 1e6);
  EXPECT_GT(set_before, 1'000'000'000) << "four readers wait most of 3 s behind 20 ms updates";
  EXPECT_LT(set_after * 10, set_before);
  int status = 0;
  const std::string diff = GoPprof(
      "-top -sample_index=delay -base " + WriteTempFile(before) + " " + WriteTempFile(after),
      &status);
  ASSERT_EQ(status, 0) << diff;
  std::istringstream rows(diff);
  std::string row, set_row;
  while (std::getline(rows, row)) {
    if (row.find("demo::Cache::Set") != std::string::npos) set_row = row;
  }
  // "-9.12s 48.0% 48.0% -9.12s 48.0%  demo::Cache::Set": flat, then cum.
  ASSERT_FALSE(set_row.empty()) << diff;
  EXPECT_EQ(set_row.find_first_not_of(' '), set_row.find('-')) << "not negative: " << set_row;
}

// Source lines: the profile carries file:line for every frame, so -list
// annotates the demo's sources (in the repository) with no binary at all.
TEST_F(DemoTest, ListAnnotatesTheSourceLinesOfCacheSetAndGet) {
  Start({"--readers=4", "--writers=2", "--slow-ms=5"});
  std::this_thread::sleep_for(std::chrono::seconds(2));
  int status;
  // The mutex profile charges Set's unlock: the end of its lock's scope.
  std::string list = GoPprof("-list 'Cache::Set' " + Url("/debug/pprof/mutex"), &status);
  ASSERT_EQ(status, 0) << list;
  EXPECT_NE(list.find("ROUTINE ======================== demo::Cache::Set in "), std::string::npos)
      << list;
  EXPECT_NE(list.find("data_[key] = SlowProcess(value);  // The bug"), std::string::npos) << list;
  // The block profile charges the waiting: the line that takes the lock.
  list = GoPprof("-list 'Cache::Get' " + Url("/debug/pprof/block"), &status);
  ASSERT_EQ(status, 0) << list;
  std::istringstream lines(list);
  std::string line, lock_line;
  while (std::getline(lines, line)) {
    // Get's own lock line comes first (Set's may follow as context).
    if (lock_line.empty() && line.find("MutexLock lock(&mu_);") != std::string::npos) {
      lock_line = line;
    }
  }
  ASSERT_FALSE(lock_line.empty()) << list;
  EXPECT_NE(lock_line.find_first_not_of(" "), lock_line.find('.')) << lock_line;
}

// Inlined frames are Lines of one Location, as Go writes them.
TEST_F(DemoTest, InlinedFramesShareALocation) {
  Start({"--readers=4", "--writers=2", "--slow-ms=5"});
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const auto p =
      lockprof::testing::ParseProfile(lockprof::testing::HttpGet(port_, "/debug/pprof/mutex"));
  bool inlined = false;
  for (const auto& loc : p.location()) inlined |= loc.line_size() > 1;
  EXPECT_TRUE(inlined);
  ASSERT_GT(p.mapping_size(), 0);
  EXPECT_TRUE(p.mapping(0).has_inline_frames());
  EXPECT_TRUE(p.mapping(0).has_line_numbers());
}

// ?seconds=N on a running service: what the window gained, not the total.
TEST_F(DemoTest, SecondsReturnsTheWindowOnly) {
  Start({"--readers=4", "--writers=2", "--slow-ms=5"});
  std::this_thread::sleep_for(std::chrono::seconds(2));
  using lockprof::testing::HttpGet;
  using lockprof::testing::ParseProfile;
  using lockprof::testing::SumValues;
  const int64_t before = SumValues(ParseProfile(HttpGet(port_, "/debug/pprof/block")), 1);
  const std::string out = lockprof::testing::WriteTempFile("", ".pb.gz");
  int status;
  const std::string log =
      GoPprof("-proto -output " + out + " -seconds 2 " + Url("/debug/pprof/block"), &status);
  ASSERT_EQ(status, 0) << log;
  const int64_t after = SumValues(ParseProfile(HttpGet(port_, "/debug/pprof/block")), 1);
  const auto window = ParseProfile(lockprof::testing::ReadFile(out));
  EXPECT_NEAR(double(window.duration_nanos()), 2e9, 0.2e9);
  const int64_t got = SumValues(window, 1);
  EXPECT_GT(before, 0);
  EXPECT_GT(got, 0);
  EXPECT_LE(got, after - before);
}

// The hold profile: Set's critical sections (sampled 1 in 10 here) each
// hold the lock at least --slow-ms, Get's far less. (Which one holds it
// longer in total depends on how often the scheduler preempts a reader
// holding it, so the test compares hold per acquisition.)
TEST_F(DemoTest, HoldProfileShowsCacheSetHoldingTheLock) {
  demo_env_ = {"LOCKPROF_HOLD_RATE=10"};
  Start({"--readers=4", "--writers=2", "--slow-ms=5"});
  std::this_thread::sleep_for(std::chrono::seconds(3));
  using lockprof::testing::SumValues;
  const auto p =
      lockprof::testing::ParseProfile(lockprof::testing::HttpGet(port_, "/debug/pprof/hold"));
  const int64_t set_holds = SumValues(p, 0, "demo::Cache::Set");
  ASSERT_GT(set_holds, 0);
  EXPECT_EQ(set_holds % 10, 0);
  EXPECT_GE(SumValues(p, 1, "demo::Cache::Set") / set_holds, 5'000'000);
  const int64_t get_holds = SumValues(p, 0, "demo::Cache::Get");
  ASSERT_GT(get_holds, 0);
  EXPECT_LT(SumValues(p, 1, "demo::Cache::Get") / get_holds, 1'000'000);
  int status;
  std::string top = GoPprof("-top -sample_index=hold " + Url("/debug/pprof/hold"), &status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_NE(top.find("Type: hold"), std::string::npos) << top;
  EXPECT_NE(top.find("demo::Cache::Set"), std::string::npos) << top;
}

// LOCKPROF_ADMIN_ADDR set on a demo given --addr: the environment wins the
// address, and the demo (which treats a failed start as fatal) runs and
// serves there.
TEST_F(DemoTest, EnvironmentAddressWinsOverAddrAndTheDemoServesThere) {
  const int env = lockprof::testing::FreeLoopbackPort();
  demo_env_ = {"LOCKPROF_ADMIN_ADDR=127.0.0.1:" + std::to_string(env)};
  Start({"--readers=2", "--writers=1", "--slow-ms=1"});
  EXPECT_EQ(port_, env);
  int status = 0;
  ParseProfile(HttpGet(env, "/debug/pprof/mutex", &status));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(demo_->Stop(), 0);
}

// `--help` (README: "lists its flags") is an answer, not an error: the usage
// on stdout, status 0; a bad flag gets it on stderr, status 2.
TEST(DemoFlagsTest, HelpListsTheFlagsOnStdoutAndSucceeds) {
  int status = -1;
  const std::string help =
      RunCommand(std::string(LOCKPROF_DEMO_PATH) + " --help 2>/dev/null", &status);
  EXPECT_EQ(status, 0);
  EXPECT_NE(help.find("--fixed"), std::string::npos) << help;
  const std::string bad =
      RunCommand(std::string(LOCKPROF_DEMO_PATH) + " --bogus 2>&1 >/dev/null", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(bad.find("unknown flag --bogus"), std::string::npos) << bad;
}

}  // namespace
