// A real Prometheus server (Debian's prometheus) scrapes this process's admin
// endpoint every second; its HTTP API must then answer PromQL queries on the
// named lock's wait histogram.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::Child;
using lockprof::testing::FreeLoopbackPort;
using lockprof::testing::RunCommand;

// Runs an instant query against Prometheus's HTTP API; returns the JSON.
std::string Query(int port, const std::string& promql) {
  return RunCommand("curl -s -G --max-time 5 --data-urlencode 'query=" + promql +
                    "' http://127.0.0.1:" + std::to_string(port) + "/api/v1/query");
}

// The first sample value in a query answer ("value":[<time>,"<v>"]), or -1.
double FirstValue(const std::string& json) {
  size_t at = json.find("\"value\":[");
  if (at == std::string::npos) return -1;
  at = json.find(",\"", at);
  if (at == std::string::npos) return -1;
  return std::strtod(json.c_str() + at + 2, nullptr);
}

// Polls `fn` every 500 ms until it returns true or `seconds` pass.
template <typename F>
bool Eventually(int seconds, F fn) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fn()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return fn();
}

ABSL_ATTRIBUTE_NOINLINE void ContendedWork(lockprof::Mutex& mu) {
  std::lock_guard<lockprof::Mutex> lock(mu);
  std::this_thread::sleep_for(std::chrono::microseconds(300));
}

TEST(PrometheusTest, ScrapesAdminEndpointAndAnswersQueriesOnTheNamedLock) {
  ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  const int target = lockprof::AdminServerPort();
  static lockprof::Mutex mu{"cache.main"};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back([&] {
      while (!stop) ContendedWork(mu);
    });
  }

  const std::string dir = ::testing::TempDir() + "lockprof_prometheus_" + std::to_string(getpid());
  RunCommand("rm -rf " + dir + " && mkdir -p " + dir + "/data");
  std::ofstream(dir + "/prometheus.yml") << "global:\n"
                                            "  scrape_interval: 1s\n"
                                            "  scrape_timeout: 1s\n"
                                            "scrape_configs:\n"
                                            "  - job_name: lockprof\n"
                                            "    static_configs:\n"
                                            "      - targets: ['127.0.0.1:"
                                         << target << "']\n";
  const int port = FreeLoopbackPort();
  // Through a shell only to keep Prometheus's log out of the test output.
  Child prometheus({"/bin/sh", "-c",
                    "exec prometheus --config.file=" + dir +
                        "/prometheus.yml --storage.tsdb.path=" + dir +
                        "/data --web.listen-address=127.0.0.1:" + std::to_string(port) + " >" +
                        dir + "/prometheus.log 2>&1"});
  const std::string log = dir + "/prometheus.log";

  ASSERT_TRUE(Eventually(60, [&] {
    int status = 0;
    lockprof::testing::HttpGet(port, "/-/ready", &status);
    return status == 200;
  })) << RunCommand("tail -20 " + log);

  std::string buckets;
  EXPECT_TRUE(Eventually(60, [&] {
    buckets = Query(port, "lockprof_lock_wait_seconds_bucket{lock=\"cache.main\",le=\"+Inf\"}");
    return FirstValue(buckets) > 0;
  })) << buckets;
  EXPECT_NE(buckets.find("\"job\":\"lockprof\""), std::string::npos) << buckets;

  // rate() needs two scrapes in its window; the workers keep contending.
  std::string rate;
  EXPECT_TRUE(Eventually(60, [&] {
    rate = Query(port, "rate(lockprof_lock_wait_seconds_count{lock=\"cache.main\"}[10s])");
    return FirstValue(rate) > 0;
  })) << rate;
  std::string p99;
  EXPECT_TRUE(Eventually(30, [&] {
    p99 = Query(port,
                "histogram_quantile(0.99, rate(lockprof_lock_wait_seconds_bucket{lock=\"cache."
                "main\"}[10s]))");
    return FirstValue(p99) > 0;
  })) << p99;
  // The whole exposition was ingested: the target is up, with no scrape error.
  std::string up = Query(port, "up{job=\"lockprof\"}");
  EXPECT_EQ(FirstValue(up), 1) << up;

  stop = true;
  for (auto& w : workers) w.join();
  prometheus.Stop();
  lockprof::StopAdminServer();
  RunCommand("rm -rf " + dir);
}

// The fenced block of `markdown` that starts with the line "```<info>" and
// whose first line of text starts with `first`; "" if there is none.
std::string FencedBlock(const std::string& markdown, const std::string& info,
                        const std::string& first) {
  const size_t at = markdown.find("```" + info + "\n" + first);
  if (at == std::string::npos) return "";
  const size_t start = at + 4 + info.size();
  return markdown.substr(start, markdown.find("```", start) - start);
}

// README "Metrics": its alerting rules, and its PromQL queries (each made a
// recording rule), pass promtool check rules.
TEST(PrometheusTest, PromtoolAcceptsTheReadmesRulesAndQueries) {
  const std::string readme = lockprof::testing::ReadFile(LOCKPROF_SOURCE_DIR "/README.md");
  const std::string rules = FencedBlock(readme, "yaml", "groups:");
  ASSERT_NE(rules.find("alert: SlowLockAcquire"), std::string::npos) << rules;
  std::istringstream queries(FencedBlock(readme, "promql", "#"));
  std::string recorded = "groups:\n  - name: readme_queries\n    rules:\n";
  int n = 0;
  for (std::string line; std::getline(queries, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::string quoted;  // A YAML single-quoted scalar: ' doubled.
    for (char c : line) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    recorded +=
        "      - record: readme:query" + std::to_string(n++) + "\n        expr: '" + quoted + "'\n";
  }
  EXPECT_EQ(n, 5) << "the README's queries";
  for (const std::string& file : {rules, recorded}) {
    const std::string path = lockprof::testing::WriteTempFile(file, ".yml");
    int status = 0;
    const std::string out = RunCommand("promtool check rules " + path + " 2>&1", &status);
    EXPECT_EQ(status, 0) << out << file;
    EXPECT_NE(out.find("SUCCESS"), std::string::npos) << out;
  }
}

}  // namespace
