#include "lockprof/agent/base/parse.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "lockprof/agent/labels.h"
#include "lockprof/primitives/mutex.h"
#include "test_util.h"

namespace lockprof::agent {
namespace {

TEST(EnvTest, ParseIntAcceptsOnlyWholeIntegersInRange) {
  EXPECT_EQ(ParseInt("10", 0, 100), 10);
  EXPECT_EQ(ParseInt("-5", -10, 10), -5);
  EXPECT_EQ(ParseInt("+7", 0, 10), 7);
  EXPECT_EQ(ParseInt("9223372036854775807", 0, INT64_MAX), INT64_MAX);
  EXPECT_EQ(ParseInt("-9223372036854775808", INT64_MIN, 0), INT64_MIN);
  for (const char* bad : {"", "-", "+", "1x", " 1", "1 ", "0x10", "1e3", "101",
                          "9223372036854775808", "99999999999999999999999"}) {
    EXPECT_FALSE(ParseInt(bad, 0, 100).has_value()) << bad;
  }
}

TEST(EnvTest, ParseHostPort) {
  std::string host, error;
  int port = 0;
  ASSERT_TRUE(ParseHostPort("127.0.0.1:6060", &host, &port, &error));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 6060);
  ASSERT_TRUE(ParseHostPort(":7070", &host, &port, &error));
  EXPECT_EQ(host, "127.0.0.1");  // Loopback unless told otherwise.
  ASSERT_TRUE(ParseHostPort("[::1]:0", &host, &port, &error));
  EXPECT_EQ(host, "::1");
  for (const char* bad : {"", "6060", "host:", "host:65536", "host:-1", "a b:1", "h:1x"}) {
    EXPECT_FALSE(ParseHostPort(bad, &host, &port, &error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

// The sampling rates a demo process started with `env` (extra "K=V"
// entries) serves on its /metrics: {mutex fraction, block rate in seconds,
// hold rate}.
std::vector<double> ServedRates(const std::vector<std::string>& env) {
  lockprof::testing::Child demo(
      {LOCKPROF_DEMO_PATH, "--addr=127.0.0.1:0", "--readers=1", "--writers=1", "--duration=30"},
      env);
  const int port = lockprof::testing::PortFromLine(demo.WaitForLine("admin endpoint"));
  EXPECT_GT(port, 0);
  int status = 0;
  const std::string metrics = lockprof::testing::HttpGet(port, "/metrics", &status);
  EXPECT_EQ(status, 200);
  std::vector<double> rates;
  for (const char* name : {"lockprof_mutex_profile_fraction", "lockprof_block_profile_rate_seconds",
                           "lockprof_hold_profile_rate"}) {
    rates.push_back(lockprof::testing::MetricValue(metrics, name));
  }
  return rates;
}

// The documented defaults (README "Sampling defaults"), as a process that
// sets nothing serves them: mutex fraction 10, block rate 10 us, hold rate
// 1000.
TEST(EnvTest, DefaultRatesAreServed) {
  EXPECT_EQ(ServedRates({}), (std::vector<double>{10, 10e-6, 1000}));
  // And the environment sets them.
  EXPECT_EQ(ServedRates({"LOCKPROF_MUTEX_FRACTION=3", "LOCKPROF_BLOCK_RATE=2000000",
                         "LOCKPROF_HOLD_RATE=7"}),
            (std::vector<double>{3, 2e-3, 7}));
}

// A malformed LOCKPROF_* value is reported once on stderr and ignored.
TEST(EnvTest, MalformedEnvironmentIsReportedOnceAndIgnored) {
  int status;
  std::string out = lockprof::testing::RunCommand(
      std::string("LOCKPROF_MUTEX_FRACTION=lots LOCKPROF_BLOCK_RATE=-3 LOCKPROF_MAX_STACKS=abc "
                  "LOCKPROF_MAX_LABEL_SETS=8 ") +
          LOCKPROF_DEMO_PATH + " --addr=127.0.0.1:0 --duration=1 --readers=1 --writers=1 2>&1",
      &status);
  EXPECT_EQ(status, 0) << out;
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = out.find(needle); at != std::string::npos; at = out.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("lockprof: ignoring LOCKPROF_MUTEX_FRACTION=\"lots\""), 1u) << out;
  EXPECT_EQ(count("lockprof: ignoring LOCKPROF_BLOCK_RATE=\"-3\""), 1u) << out;
  // Read at start, not by each table's or registry's first event.
  EXPECT_EQ(count("lockprof: ignoring LOCKPROF_MAX_STACKS=\"abc\""), 1u) << out;
  EXPECT_EQ(count("lockprof: ignoring LOCKPROF_MAX_LABEL_SETS=\"8\""), 1u) << out;
  // Ignored: the defaults stay in force.
  EXPECT_EQ(ServedRates({"LOCKPROF_MUTEX_FRACTION=lots", "LOCKPROF_BLOCK_RATE=-3"}),
            (std::vector<double>{10, 10e-6, 1000}));
}

// The environment is read during static initialisation, never later: a
// table's or the label registry's first event comes on any thread at any
// time, and getenv can crash while another thread calls setenv.
TEST(EnvTest, NothingReadsTheEnvironmentOnceTheProgramRuns) {
  setenv("LOCKPROF_MAX_STACKS", "abc", 1);
  setenv("LOCKPROF_MAX_LABEL_SETS", "abc", 1);
  ::testing::internal::CaptureStderr();
  {
    lockprof::ScopedLabels labels({{"endpoint", "/env"}});
    lockprof::Mutex mu("env.mu");
    lockprof::testing::ContendOnce(mu, std::chrono::milliseconds(20), [&] {
      mu.lock();
      mu.unlock();
    });
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  unsetenv("LOCKPROF_MAX_STACKS");
  unsetenv("LOCKPROF_MAX_LABEL_SETS");
  EXPECT_EQ(err.find("LOCKPROF_MAX"), std::string::npos) << err;
}

}  // namespace
}  // namespace lockprof::agent
