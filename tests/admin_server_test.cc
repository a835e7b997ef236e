// The admin endpoint, exercised with real clients: curl for the HTTP
// contract (status codes, headers, Go's error texts) and go tool pprof for
// the profiles it serves.
#include "lockprof/server/admin_server.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::testing::GoPprof;
using lockprof::testing::HttpGet;
using lockprof::testing::ParseProfile;
using lockprof::testing::WriteTempFile;

ABSL_ATTRIBUTE_NOINLINE void AdminTestSlowSection(lockprof::Mutex& mu) {
  std::lock_guard<lockprof::Mutex> g(mu);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

class AdminServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rates_ = new lockprof::testing::ScopedRates(1, 1, lockprof::testing::ScopedRates::kKeep);
    ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
    port_ = lockprof::AdminServerPort();
    // Some contention to profile.
    static lockprof::Mutex mu{"admin.test"};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([] {
        for (int i = 0; i < 30; ++i) AdminTestSlowSection(mu);
      });
    }
    for (auto& t : threads) t.join();
  }
  static void TearDownTestSuite() {
    lockprof::StopAdminServer();
    delete rates_;
  }
  static int port_;
  static lockprof::testing::ScopedRates* rates_;
};
int AdminServerTest::port_ = 0;
lockprof::testing::ScopedRates* AdminServerTest::rates_ = nullptr;

// cpp-httplib bound port 70000 as 4464 and said 70000, and "" as every
// loopback address: refused with what to fix.
TEST(AdminServerOptionsTest, PortsOutOfRangeAndEmptyAddressesAreRefused) {
  for (const int port : {70000, 65536, -1}) {
    const absl::Status s = lockprof::StartAdminServer({"127.0.0.1", port});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << port << ": " << s;
    EXPECT_NE(s.message().find("not in 0-65535"), std::string::npos) << s;
  }
  const absl::Status s = lockprof::StartAdminServer({"", 6293});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("address is empty"), std::string::npos) << s;
  EXPECT_EQ(lockprof::AdminServerPort(), 0);
  // And a valid start after them works.
  ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  EXPECT_GT(lockprof::AdminServerPort(), 0);
  lockprof::StopAdminServer();
}

TEST_F(AdminServerTest, BindsLoopbackAndRefusesSecondStart) {
  EXPECT_GT(port_, 0);
  EXPECT_FALSE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
  std::string out = lockprof::testing::RunCommand("ss -ltn 2>/dev/null || netstat -ltn");
  EXPECT_NE(out.find("127.0.0.1:" + std::to_string(port_)), std::string::npos) << out;
}

TEST_F(AdminServerTest, ProfileHeadersAreGos) {
  int status;
  std::string headers;
  std::string body = HttpGet(port_, "/debug/pprof/mutex", &status, &headers);
  EXPECT_EQ(status, 200);
  EXPECT_NE(headers.find("content-type: application/octet-stream"), std::string::npos);
  EXPECT_NE(headers.find("content-disposition: attachment; filename=\"mutex\""), std::string::npos);
  EXPECT_NE(headers.find("x-content-type-options: nosniff"), std::string::npos);
  auto p = ParseProfile(body);
  EXPECT_GT(p.sample_size(), 0);

  body = HttpGet(port_, "/debug/pprof/block?debug=1", &status, &headers);
  EXPECT_EQ(status, 200);
  EXPECT_NE(headers.find("content-type: text/plain; charset=utf-8"), std::string::npos);
  EXPECT_EQ(headers.find("content-disposition"), std::string::npos);
  EXPECT_EQ(body.rfind("--- contention:\ncycles/second=1000000000\n", 0), 0u) << body;
}

TEST_F(AdminServerTest, ErrorsAreGos) {
  int status;
  std::string headers;
  std::string body = HttpGet(port_, "/debug/pprof/nosuch", &status, &headers);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(body, "Unknown profile\n");
  EXPECT_NE(headers.find("x-go-pprof: 1"), std::string::npos);
  EXPECT_NE(headers.find("content-type: text/plain"), std::string::npos);
  // debug= is read with strconv.Atoi, its error ignored: not a number is
  // 0 (the protobuf form), a number out of range the nearest int64.
  for (const char* proto : {"debug=x", "debug=-1", "debug=", "debug=1x"}) {
    body = HttpGet(port_, std::string("/debug/pprof/mutex?") + proto, &status, &headers);
    EXPECT_EQ(status, 200) << proto;
    EXPECT_NE(headers.find("content-type: application/octet-stream"), std::string::npos) << proto;
  }
  for (const char* text : {"debug=2", "debug=99999999999999999999"}) {
    body = HttpGet(port_, std::string("/debug/pprof/mutex?") + text, &status, &headers);
    EXPECT_EQ(status, 200) << text;
    EXPECT_EQ(body.rfind("--- mutex:\n", 0), 0u) << text;
  }
  // The profile is looked up first: an unknown one is 404 whatever debug= is.
  HttpGet(port_, "/debug/pprof/nosuch?debug=x", &status, &headers);
  EXPECT_EQ(status, 404);
}

// Go's ServeMux sends /debug/pprof to /debug/pprof/, keeping the query.
TEST_F(AdminServerTest, TheRootRedirectKeepsTheQuery) {
  int status;
  std::string headers;
  std::string body = HttpGet(port_, "/debug/pprof?x=1&y=%3C", &status, &headers);
  EXPECT_EQ(status, 301);
  // (HttpGet lowercases the headers.)
  EXPECT_NE(headers.find("location: /debug/pprof/?x=1&y=%3c\r\n"), std::string::npos) << headers;
  EXPECT_EQ(body, "<a href=\"/debug/pprof/?x=1&amp;y=%3C\">Moved Permanently</a>.\n\n");
  HttpGet(port_, "/debug/pprof", &status, &headers);
  EXPECT_NE(headers.find("location: /debug/pprof/\r\n"), std::string::npos) << headers;
}

TEST_F(AdminServerTest, IndexListsProfilesWithCounts) {
  int status;
  std::string body = HttpGet(port_, "/debug/pprof/", &status);
  EXPECT_EQ(status, 200);
  for (const char* name : {"mutex", "block"}) {
    EXPECT_NE(body.find(std::string("href='") + name + "?debug=1'"), std::string::npos) << body;
  }
  // Each profile's row, as Go writes it: <tr><td>COUNT</td><td><a href='NAME?debug=1'>.
  // The count is the profile's number of samples, as served.
  for (const char* name : {"mutex", "block", "hold", "cas"}) {
    const size_t link = body.find(std::string("</td><td><a href='") + name + "?debug=1'");
    ASSERT_NE(link, std::string::npos) << name << "\n" << body;
    const size_t cell = body.rfind("<td>", link);
    ASSERT_NE(cell, std::string::npos) << body;
    const int64_t count = std::atoll(body.c_str() + cell + 4);
    const auto served = ParseProfile(HttpGet(port_, std::string("/debug/pprof/") + name, &status));
    EXPECT_EQ(count, served.sample_size()) << name << "\n" << body;
    if (std::string(name) == "mutex" || std::string(name) == "block") {
      EXPECT_GT(count, 0) << name << ": the suite's set-up contended\n" << body;
    }
  }
}

// A link on the index page that leads nowhere is a broken promise to
// whoever browses it: every one must answer 200.
TEST_F(AdminServerTest, EveryLinkOnTheIndexAnswers200) {
  int status = 0;
  const std::string index = HttpGet(port_, "/debug/pprof/", &status);
  ASSERT_EQ(status, 200);
  const std::regex href(R"(href=['"]([^'"]*)['"])");
  int links = 0;
  for (std::sregex_iterator it(index.begin(), index.end(), href), end; it != end; ++it, ++links) {
    const std::string target = (*it)[1];
    HttpGet(port_, "/debug/pprof/" + target, &status);
    EXPECT_EQ(status, 200) << target << "\n" << index;
  }
  EXPECT_EQ(links, 6) << "four profiles, cmdline, symbol\n" << index;
}

// Go sorts its index by name, the table and the descriptions alike.
TEST_F(AdminServerTest, IndexIsInNameOrderAsGos) {
  int status = 0;
  const std::string index = HttpGet(port_, "/debug/pprof/", &status);
  ASSERT_EQ(status, 200);
  for (const char* pattern :
       {R"(href='([a-z_]+)\?debug=1')", R"(class=profile-name>([a-z_]+): )"}) {
    std::vector<std::string> names;
    const std::regex name(pattern);
    for (std::sregex_iterator it(index.begin(), index.end(), name), end; it != end; ++it) {
      names.push_back((*it)[1]);
    }
    EXPECT_EQ(names,
              (std::vector<std::string>{"block", "cas", "cmdline", "hold", "mutex", "symbol"}))
        << pattern << "\n"
        << index;
  }
}

TEST_F(AdminServerTest, GoToolPprofReadsRawAndLegacyText) {
  int status;
  std::string raw =
      GoPprof("-raw http://127.0.0.1:" + std::to_string(port_) + "/debug/pprof/mutex", &status);
  ASSERT_EQ(status, 0) << raw;
  EXPECT_NE(raw.find("PeriodType: contentions count"), std::string::npos) << raw;
  EXPECT_NE(raw.find("Period: 1"), std::string::npos) << raw;
  EXPECT_NE(raw.find("contentions/count delay/nanoseconds"), std::string::npos) << raw;
  EXPECT_NE(raw.find("AdminTestSlowSection"), std::string::npos) << raw;

  std::string text = HttpGet(port_, "/debug/pprof/mutex?debug=1", &status);
  std::string path = WriteTempFile(text, ".txt");
  std::string top = GoPprof("-top -symbolize=none " + path, &status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_NE(top.find("Showing nodes"), std::string::npos) << top;
}

}  // namespace
