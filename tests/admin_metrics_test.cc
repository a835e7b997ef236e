// What /metrics says about the admin endpoint's defences and the profiles'
// full tables, checked against events whose number is known: connections
// refused and timed out, requests cut, samples whose stack was dropped.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "admin_test_client.h"
#include "lifecycle_util.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/record/stack_trace.h"
#include "lockprof/agent/tables/profile_tables.h"
#include "lockprof/server/httplib/connection_guard.h"
#include "lockprof/server/httplib/request_limit_stream.h"

namespace {

using lockprof::admin_test::ClosedByServer;
using lockprof::admin_test::Connect;
using lockprof::admin_test::Curl;
using lockprof::admin_test::Options;
using lockprof::admin_test::Server;
using lockprof::admin_test::WarmUp;
using lockprof::testing::MetricValue;
using lockprof::testing::RunCommand;
using lockprof::testing::WaitFor;
using lockprof::testing::WriteTempFile;

// One connection closed for the cap (a silent one evicted for a newer one
// over max_connections), one timed out (the newer one, silent past
// read_timeout_ms), one request head cut: each counter on /metrics grows by
// exactly one, and promtool accepts the text.
TEST(AdminMetricsTest, DefencesAreCountedOnMetrics) {
  Server s(Options([](auto& o) {
    o.max_threads = 1;
    o.max_connections = 1;
    o.read_timeout_ms = 500;
    o.max_request_head_bytes = 1024;
  }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  ASSERT_EQ(WarmUp(s.url("/metrics")), 200);
  ASSERT_EQ(lockprof::server::ConnectionsOpen(), 0u);
  const uint64_t timed_out = lockprof::server::ConnectionsTimedOut();
  const uint64_t refused = lockprof::server::ConnectionsRefused();
  const uint64_t heads_cut = lockprof::server::RequestHeadsCut();

  const int silent = Connect(s.port());  // Takes the only slot, says nothing.
  ASSERT_GE(silent, 0);
  ASSERT_TRUE(WaitFor([] { return lockprof::server::ConnectionsOpen() == 1u; }, 10000));
  const int extra = Connect(s.port());  // Over the cap: the silent one is evicted.
  ASSERT_GE(extra, 0);
  EXPECT_TRUE(ClosedByServer(silent, 5000));
  // The newer connection, silent too, holds the only slot until its deadline.
  EXPECT_TRUE(ClosedByServer(extra, 10000));
  close(extra);
  close(silent);
  EXPECT_EQ(Curl("-H 'X-Big: " + std::string(2000, 'a') + "' " + s.url("/metrics")), 431);

  std::string body;
  ASSERT_EQ(Curl(s.url("/metrics"), &body), 200);
  EXPECT_EQ(MetricValue(body, "lockprof_admin_connections_refused_total"), double(refused + 1))
      << body;
  EXPECT_EQ(MetricValue(body, "lockprof_admin_connections_timed_out_total"), double(timed_out + 1));
  EXPECT_EQ(MetricValue(body, "lockprof_admin_requests_cut_total{limit=\"head\"}"),
            double(heads_cut + 1));
  EXPECT_GE(MetricValue(body, "lockprof_admin_connections_open"), 1.0);  // This scrape's.
  EXPECT_EQ(MetricValue(body, "lockprof_admin_requests_cut_total{limit=\"body\"}"),
            double(lockprof::server::RequestBodiesCut()));
  int status = 0;
  const std::string out =
      RunCommand("promtool check metrics < " + WriteTempFile(body) + " 2>&1", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "");
}

// In a child (so that this process's tables stay as they are): block events
// on 4,000 distinct locks fill the block profile's table (4,096 keys, 7/8
// used); then two events of one more new lock are both counted, as
// lockprof_profile_samples_dropped_total shows.
TEST(AdminMetricsTest, SamplesDroppedOnAFullTableAreCountedPerEvent) {
  auto child = lockprof::testing::RunInForkedChild([](int fd) {
    lockprof::testing::ScopedRates rates(lockprof::testing::ScopedRates::kKeep, 1,
                                         lockprof::testing::ScopedRates::kKeep);
    static char names[4001][24];
    lockprof::agent::StackTrace stack;
    lockprof::agent::CaptureStack(__builtin_frame_address(0), &stack);
    for (int i = 0; i <= 4000; ++i) {
      std::snprintf(names[i], sizeof names[i], "metrics.full.%d", i);
      if (i < 4000) lockprof::agent::RecordBlock(1000000, {names[i]}, stack);
    }
    const auto& table = lockprof::agent::ProfileTable(lockprof::agent::ProfileId::kBlock);
    const uint64_t before = table.dropped();
    lockprof::agent::RecordBlock(1000000, {names[4000]}, stack);
    lockprof::agent::RecordBlock(1000000, {names[4000]}, stack);
    std::string metrics;
    lockprof::WriteMetrics(&metrics);
    std::ostringstream out;
    out << before << " " << table.dropped() << "\n" << metrics;
    return lockprof::testing::WriteAll(fd, out.str()) ? 0 : 3;
  });
  ASSERT_FALSE(child.timed_out);
  ASSERT_EQ(child.exit_code, 0);
  std::istringstream in(child.output);
  uint64_t before = 0, after = 0;
  in >> before >> after;
  EXPECT_GT(before, 0u);  // The table was full.
  EXPECT_EQ(after, before + 2);
  EXPECT_EQ(MetricValue(child.output, "lockprof_profile_samples_dropped_total{profile=\"block\"}"),
            double(after));
}

}  // namespace
