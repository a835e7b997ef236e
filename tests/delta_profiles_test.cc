// Delta profiles with real clients: `go tool pprof -seconds N`, curl, and a
// godeltaprof-style scraper, against workloads whose wait times are known by
// construction.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "lockprof/server/handlers/delta_handlers.h"
#include "lockprof/server/handlers/pprof_handlers.h"
#include "test_util.h"

namespace {

using lockprof::server::ActiveDeltaWaits;
using lockprof::testing::GoPprof;
using lockprof::testing::HttpGet;
using lockprof::testing::NowNanos;
using lockprof::testing::ParseProfile;
using lockprof::testing::RunCommand;
using lockprof::testing::SumValues;
using lockprof::testing::SumValuesWithLabel;
using lockprof::testing::WaitFor;
using Profile = perftools::profiles::Profile;

// Holds `mu` for hold_ns once all `waiters` are about to wait for it.
ABSL_ATTRIBUTE_NOINLINE void DeltaTestHolder(lockprof::Mutex& mu, std::atomic<bool>& held,
                                             std::atomic<int>& waiting, int waiters,
                                             int64_t hold_ns) {
  mu.lock();
  held.store(true);
  while (waiting.load() < waiters) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::nanoseconds(hold_ns));
  mu.unlock();
}

// `rounds` times, one thread holds `mu` for hold_ns while `waiters` threads
// wait for it. Returns the total time the waiters waited: every wait is
// charged to some unlock (mutex profile) and to the waiter (block profile),
// so both profiles' delay totals for this lock must equal it.
int64_t ContendRounds(lockprof::Mutex& mu, int rounds, int waiters, int64_t hold_ns) {
  int64_t total_wait = 0;
  for (int r = 0; r < rounds; ++r) {
    std::atomic<bool> held{false};
    std::atomic<int> waiting{0};
    std::vector<int64_t> waited(size_t(waiters), 0);
    std::thread holder([&] { DeltaTestHolder(mu, held, waiting, waiters, hold_ns); });
    std::vector<std::thread> threads;
    for (int w = 0; w < waiters; ++w) {
      threads.emplace_back([&, w] {
        while (!held.load()) std::this_thread::yield();
        waiting.fetch_add(1);
        const int64_t start = NowNanos();
        mu.lock();
        waited[size_t(w)] = NowNanos() - start;
        mu.unlock();
      });
    }
    holder.join();
    for (auto& t : threads) t.join();
    for (int64_t w : waited) total_wait += w;
  }
  return total_wait;
}

class DeltaProfilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
    port_ = lockprof::AdminServerPort();
  }
  void TearDown() override { lockprof::StopAdminServer(); }
  // Tests may change the hold rate too: restored with the others.
  lockprof::testing::ScopedRates rates_{1, 1, lockprof::testing::ScopedRates::kKeep};
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  Profile Get(const std::string& path, std::string* headers = nullptr) const {
    int status = 0;
    std::string body = HttpGet(port_, path, &status, headers);
    EXPECT_EQ(status, 200) << path << ": " << body;
    return ParseProfile(body);
  }
  int port_ = 0;
};

// The README's `go tool pprof -seconds 5`: contention before the window is
// left out, contention inside it is all there, exactly (fraction 1).
TEST_F(DeltaProfilesTest, GoPprofSecondsReturnsOnlyTheWindow) {
  lockprof::Mutex before{"delta.before"}, inside{"delta.inside"};
  ContendRounds(before, 3, 2, 20'000'000);
  const std::string out = lockprof::testing::WriteTempFile("", ".pb.gz");
  std::string pprof_output;
  int pprof_status = -1;
  std::thread pprof([&] {
    pprof_output = GoPprof("-proto -output " + out + " -seconds 5 " + Url("/debug/pprof/mutex"),
                           &pprof_status);
  });
  // The window opens when the request arrives: start the contention after.
  ASSERT_TRUE(WaitFor([] { return ActiveDeltaWaits() == 1; }));
  const int64_t truth = ContendRounds(inside, 6, 3, 30'000'000);
  pprof.join();
  ASSERT_EQ(pprof_status, 0) << pprof_output;
  const Profile p = ParseProfile(lockprof::testing::ReadFile(out));

  EXPECT_NEAR(double(p.duration_nanos()), 5e9, 0.5e9);
  EXPECT_GT(p.time_nanos(), 0);
  EXPECT_EQ(SumValuesWithLabel(p, 1, "lock", "delta.before"), 0);
  ASSERT_GT(truth, int64_t{6} * 3 * 30'000'000 * 9 / 10);
  EXPECT_NEAR(double(SumValuesWithLabel(p, 1, "lock", "delta.inside")), double(truth),
              0.05 * double(truth));
  // The holder's unlock is charged, at its own stack.
  EXPECT_GT(SumValues(p, 1, "DeltaTestHolder"), truth / 2);
  // Cumulatively, the earlier contention is still there.
  EXPECT_GT(SumValuesWithLabel(Get("/debug/pprof/mutex"), 1, "lock", "delta.before"), 0);
}

TEST_F(DeltaProfilesTest, MalformedWindowsGetGosErrors) {
  struct Case {
    const char* query;
    int status;
    const char* body;
  };
  const Case cases[] = {
      {"mutex?seconds=x", 400, "invalid value for \"seconds\" - must be a positive integer\n"},
      {"mutex?seconds=0", 400, "invalid value for \"seconds\" - must be a positive integer\n"},
      {"block?seconds=-3", 400, "invalid value for \"seconds\" - must be a positive integer\n"},
      {"hold?seconds=1.5", 400, "invalid value for \"seconds\" - must be a positive integer\n"},
      {"mutex?seconds=99999999999999999999", 400,
       "invalid value for \"seconds\" - must be a positive integer\n"},
      {"mutex?seconds=301", 400, "profile duration exceeds server's WriteTimeout\n"},
      {"mutex?seconds=1&debug=1", 400, "seconds and debug params are incompatible\n"},
      {"nosuch?seconds=1", 404, "Unknown profile\n"},
      {"delta_nosuch", 404, "Unknown profile\n"},
  };
  for (const Case& c : cases) {
    int status = 0;
    std::string headers;
    const std::string body =
        HttpGet(port_, std::string("/debug/pprof/") + c.query, &status, &headers);
    EXPECT_EQ(status, c.status) << c.query;
    EXPECT_EQ(body, c.body) << c.query;
    EXPECT_NE(headers.find("x-go-pprof: 1"), std::string::npos) << c.query;
    EXPECT_NE(headers.find("content-type: text/plain; charset=utf-8"), std::string::npos);
    EXPECT_EQ(headers.find("content-disposition"), std::string::npos) << c.query;
  }
  // pprof shows the server's text, as it does for Go's.
  int status = 0;
  const std::string out = GoPprof("-top '" + Url("/debug/pprof/mutex?seconds=abc") + "'", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("invalid value for \"seconds\" - must be a positive integer"),
            std::string::npos)
      << out;
}

// More windows at once than httplib's default pool has threads: all are
// served, and so is everything else meanwhile.
TEST_F(DeltaProfilesTest, ConcurrentWindowsDoNotStarveOtherRequests) {
  constexpr int kWindows = 12;
  // httplib initialises a function-local static (its set of methods) in the
  // first request it parses. The library is not built with TSan, so TSan
  // cannot see the guard that orders that initialisation before a second,
  // concurrent request's use of it, and would report a race. One request
  // first, and a moment for its thread to return to the pool (whose mutex
  // then orders everything after), keeps this test about lockprof.
  Get("/debug/pprof/mutex");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<std::thread> clients;
  std::vector<std::string> bodies(kWindows), headers(kWindows);
  std::vector<int> statuses(kWindows, 0);
  for (int i = 0; i < kWindows; ++i) {
    clients.emplace_back([&, i] {
      bodies[size_t(i)] =
          HttpGet(port_, i % 2 ? "/debug/pprof/block?seconds=5" : "/debug/pprof/hold?seconds=5",
                  &statuses[size_t(i)], &headers[size_t(i)]);
    });
  }
  ASSERT_TRUE(WaitFor([] { return ActiveDeltaWaits() == kWindows; }));
  int status = 0;
  HttpGet(port_, "/debug/pprof/", &status);
  EXPECT_EQ(status, 200);
  Get("/debug/pprof/mutex");
  // Served while every window was still open.
  EXPECT_EQ(ActiveDeltaWaits(), kWindows);
  for (auto& c : clients) c.join();
  for (int i = 0; i < kWindows; ++i) {
    ASSERT_EQ(statuses[size_t(i)], 200) << bodies[size_t(i)];
    const std::string name = i % 2 ? "block" : "hold";
    EXPECT_NE(
        headers[size_t(i)].find("content-disposition: attachment; filename=\"" + name + "-delta\""),
        std::string::npos)
        << headers[size_t(i)];
    EXPECT_NEAR(double(ParseProfile(bodies[size_t(i)]).duration_nanos()), 5e9, 0.5e9);
  }
  EXPECT_EQ(ActiveDeltaWaits(), 0);
}

TEST_F(DeltaProfilesTest, ClientThatDisconnectsFreesItsRequest) {
  const int64_t start = NowNanos();
  int curl_status = 0;
  RunCommand("curl -s -o /dev/null --max-time 1 '" + Url("/debug/pprof/mutex?seconds=60") + "'",
             &curl_status);
  EXPECT_EQ(curl_status, 28);  // curl's "operation timed out".
  // The handler notices within its 100 ms polling step, not after 60 s.
  EXPECT_TRUE(WaitFor([] { return ActiveDeltaWaits() == 0; }, 5000));
  EXPECT_LT(NowNanos() - start, 20'000'000'000);
}

TEST_F(DeltaProfilesTest, StoppingTheServerEndsOpenWindows) {
  int status = 0;
  std::thread client([&] { HttpGet(port_, "/debug/pprof/mutex?seconds=60", &status); });
  ASSERT_TRUE(WaitFor([] { return ActiveDeltaWaits() == 1; }));
  const int64_t start = NowNanos();
  lockprof::StopAdminServer();
  EXPECT_LT(NowNanos() - start, 20'000'000'000);
  client.join();
  EXPECT_EQ(ActiveDeltaWaits(), 0);
  EXPECT_EQ(status, 503) << "the client is told the server stopped, not that it went away";
}

// A godeltaprof-style scraper, once a second for ten seconds: each increment
// is reported once, so the deltas add up exactly to the cumulative
// profile's growth.
TEST_F(DeltaProfilesTest, ScrapedDeltasAddUpToCumulativeGrowth) {
  lockprof::SetHoldProfileRate(1);
  const char* kProfiles[] = {"mutex", "block", "hold", "cas"};
  std::map<std::string, Profile> start;
  for (const char* name : kProfiles) {
    start[name] = Get(std::string("/debug/pprof/") + name);
    // The first scrape reports everything since the process started.
    std::string headers;
    const Profile first = Get(std::string("/debug/pprof/delta_") + name, &headers);
    EXPECT_NE(headers.find("content-type: application/octet-stream"), std::string::npos);
    EXPECT_NE(headers.find(std::string("content-disposition: attachment; filename=\"") + name +
                           ".pprof.gz\""),
              std::string::npos)
        << headers;
    EXPECT_EQ(SumValues(first, 1), SumValues(start[name], 1)) << name;
  }

  lockprof::Mutex mu{"delta.scraped"};
  lockprof::Atomic<int64_t> value{"delta.cas"};
  std::atomic<bool> stop{false};
  std::thread workload([&] {
    while (!stop.load()) {
      ContendRounds(mu, 1, 2, 3'000'000);
      // A CAS loop that retries once, by construction: the cas profile.
      bool interfered = false;
      value.Update([&](int64_t old) {
        if (!interfered) value.fetch_add(1), interfered = true;
        return old + 1;
      });
    }
  });
  std::map<std::string, std::array<int64_t, 2>> scraped;
  for (int second = 0; second < 10; ++second) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    for (const char* name : kProfiles) {
      const Profile d = Get(std::string("/debug/pprof/delta_") + name);
      EXPECT_GT(d.sample_size(), 0) << name << " at " << second;
      EXPECT_EQ(d.duration_nanos(), 0);  // As godeltaprof.
      scraped[name][0] += SumValues(d, 0);
      scraped[name][1] += SumValues(d, 1);
    }
  }
  stop = true;
  workload.join();
  for (const char* name : kProfiles) {
    // The last, partial interval: what happened since the tenth scrape.
    const Profile last = Get(std::string("/debug/pprof/delta_") + name);
    const Profile end = Get(std::string("/debug/pprof/") + name);
    for (int v = 0; v < 2; ++v) {
      const int64_t growth = SumValues(end, v) - SumValues(start[name], v);
      EXPECT_GT(growth, 0) << name;
      EXPECT_LE(scraped[name][size_t(v)], growth) << name;
      EXPECT_EQ(scraped[name][size_t(v)] + SumValues(last, v), growth) << name << " value " << v;
    }
    // Nothing happened since: an empty delta, not a cumulative profile.
    EXPECT_EQ(Get(std::string("/debug/pprof/delta_") + name).sample_size(), 0) << name;
  }
}

// The handler alone: a cancelled request gives up at once, with Go's reply.
TEST(DeltaHandlerTest, CancelledRequestReturnsAtOnce) {
  lockprof::server::Request req;
  req.path = "/debug/pprof/block";
  req.params.emplace("seconds", "60");
  req.cancelled = [] { return true; };
  const int64_t start = NowNanos();
  const lockprof::server::Response r = lockprof::server::HandlePprof(req);
  EXPECT_LT(NowNanos() - start, 5'000'000'000);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "context canceled\n");
}

TEST(DeltaHandlerTest, WindowLimitIsConfigurable) {
  lockprof::server::Request req;
  req.path = "/debug/pprof/mutex";
  req.params.emplace("seconds", "2");
  req.cancelled = [] { return true; };
  lockprof::server::PprofOptions options;
  options.max_profile_seconds = 1;
  EXPECT_EQ(lockprof::server::HandlePprof(req, options).body,
            "profile duration exceeds server's WriteTimeout\n");
  options.max_profile_seconds = 0;  // No limit: served (and cancelled here).
  EXPECT_EQ(lockprof::server::HandlePprof(req, options).body, "context canceled\n");
  // An empty seconds= is no window at all, as in Go.
  req.params = {{"seconds", ""}};
  const lockprof::server::Response cumulative = lockprof::server::HandlePprof(req, options);
  EXPECT_EQ(cumulative.status, 200);
  EXPECT_NE(std::find(cumulative.headers.begin(), cumulative.headers.end(),
                      std::make_pair(std::string("Content-Disposition"),
                                     std::string("attachment; filename=\"mutex\""))),
            cumulative.headers.end());
}

}  // namespace
