// The contention page's server side: the JSON profiles it reads (cumulative
// and windows, with their error replies), the JSON escaping, and the token:
// the page's HTML is served without it, its data only with it. The page in
// a browser is tested by contention_page_test.py.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "admin_test_client.h"
#include "lockprof/lockprof.h"
#include "lockprof/server/admin_handler.h"
#include "lockprof/server/handlers/contention_page.h"
#include "test_util.h"

namespace {

using lockprof::admin_test::Curl;
using lockprof::admin_test::Options;
using lockprof::admin_test::ScopedCert;
using lockprof::admin_test::Server;
using lockprof::server::HandleContentionPage;
using lockprof::server::Request;
using lockprof::server::Response;
using lockprof::testing::ScopedRates;
using lockprof::testing::StartBlocked;

constexpr int kKeep = ScopedRates::kKeep;

Response Get(const std::string& path, std::multimap<std::string, std::string> params = {},
             const lockprof::server::PprofOptions& options = {}) {
  Request req;
  req.path = path;
  req.params = std::move(params);
  return HandleContentionPage(req, options);
}

// Makes one thread wait for `mu` while this one holds it: one contention,
// charged to this function's unlock in the mutex profile.
ABSL_ATTRIBUTE_NOINLINE void ContendOnce(lockprof::Mutex& mu) {
  mu.lock();
  std::vector<std::thread> waiter = StartBlocked(1, [&] {
    mu.lock();
    mu.unlock();
  });
  mu.unlock();
  waiter[0].join();
}

TEST(ContentionPageTest, ServesThePage) {
  const Response r = Get("/debug/lockprof/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r.body.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(r.body.find("</html>"), std::string::npos);
  bool csp = false;
  for (const auto& [k, v] : r.headers) {
    csp |= k == "Content-Security-Policy" && v.find("default-src 'none'") != std::string::npos;
  }
  EXPECT_TRUE(csp) << "the browser must refuse anything from elsewhere";
  EXPECT_EQ(Get("/debug/lockprof/nothing").status, 404);
  Request post;
  post.method = "POST";
  post.path = "/debug/lockprof/";
  EXPECT_EQ(HandleContentionPage(post).status, 405);
}

TEST(ContentionPageTest, ProfileJsonHasTheLockLabelAndTheStack) {
  ScopedRates rates(1, kKeep, kKeep);
  static lockprof::Mutex mu{"page.json"};
  ContendOnce(mu);
  const Response r = Get("/debug/lockprof/profile.json", {{"name", "mutex"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body.rfind(R"({"profile":"mutex","types":[["contentions","count"],)"
                         R"(["delay","nanoseconds"]],"duration_nanos":0,"samples":[)",
                         0),
            0u)
      << r.body;
  EXPECT_NE(r.body.find(R"("l":{"lock":"page.json"})"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("ContendOnce"), std::string::npos) << r.body;
  for (const char* name : {"block", "hold", "cas"}) {
    EXPECT_EQ(Get("/debug/lockprof/profile.json", {{"name", name}}).status, 200) << name;
  }
}

TEST(ContentionPageTest, WindowHoldsOnlyWhatHappenedInIt) {
  ScopedRates rates(1, kKeep, kKeep);
  static lockprof::Mutex before{"page.before"};
  static lockprof::Mutex during{"page.during"};
  ContendOnce(before);
  std::thread contender([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ContendOnce(during);
  });
  const Response r = Get("/debug/lockprof/profile.json", {{"name", "mutex"}, {"seconds", "1"}});
  contender.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("lock":"page.during")"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find(R"("lock":"page.before")"), std::string::npos) << r.body;
  const size_t d = r.body.find("\"duration_nanos\":");
  ASSERT_NE(d, std::string::npos);
  EXPECT_GE(std::stoll(r.body.substr(d + 17)), 1'000'000'000);
}

TEST(ContentionPageTest, BadRequestsGetPprofReplies) {
  const std::string json = "/debug/lockprof/profile.json";
  EXPECT_EQ(Get(json).status, 404);
  EXPECT_EQ(Get(json, {{"name", "heap"}}).status, 404);
  EXPECT_EQ(Get(json, {{"name", "mutex"}, {"seconds", "x"}}).status, 400);
  EXPECT_EQ(Get(json, {{"name", "mutex"}, {"seconds", "0"}}).status, 400);
  lockprof::server::PprofOptions short_windows;
  short_windows.max_profile_seconds = 5;
  const Response r = Get(json, {{"name", "mutex"}, {"seconds", "6"}}, short_windows);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "profile duration exceeds server's WriteTimeout\n");
}

// Numeric labels (shard) are JSON numbers: the page must tell them from
// string labels, which pprof filters differently.
TEST(ContentionPageTest, JsonEscapesNamesAndWritesNumbersAsNumbers) {
  lockprof::agent::ResolvedProfile rp;
  rp.info = &lockprof::agent::ProfileInfoFor(lockprof::agent::ProfileId::kMutex);
  rp.locations.push_back({0x1234, -1, {}});
  lockprof::agent::ResolvedLocation named{0x5678, -1, {}};
  named.frames.push_back({});
  named.frames[0].function = "f\"\\\n";
  rp.locations.push_back(named);
  lockprof::agent::ResolvedSample s{};
  s.locations = {0, 1};
  s.str_labels = {{"lock", "a\"b\x01"}};
  s.num_labels = {{"n", 7}};
  s.values[0] = 1;
  s.values[1] = 2;
  rp.samples.push_back(s);
  EXPECT_EQ(lockprof::server::ProfileJson(rp),
            R"({"profile":"mutex","types":[["contentions","count"],["delay","nanoseconds"]],)"
            R"("duration_nanos":0,"samples":[{"v":[1,2],"s":[0,1],)"
            R"("l":{"lock":"a\"b\u0001","n":7}}],"funcs":["0x1234","f\"\\\u000a"]})"
            "\n");
}

constexpr char kToken[] = "page-token-41c7";

// HEAD answers GET's Content-Length (RFC 9110), as the other endpoints do;
// it answered 0.
TEST(ContentionPageTest, HeadHasTheLengthOfGet) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  std::string get, headers;
  ASSERT_EQ(Curl("'" + s.url("/debug/lockprof/") + "'", &get), 200);
  ASSERT_EQ(Curl("-I '" + s.url("/debug/lockprof/") + "'", nullptr, nullptr, &headers), 200);
  EXPECT_NE(headers.find("Content-Length: " + std::to_string(get.size()) + "\r\n"),
            std::string::npos)
      << "GET sent " << get.size() << " bytes; HEAD:\n"
      << headers;
}

TEST(ContentionPageTest, TokenGuardsTheDataButNotThePage) {
  Server s(Options([](auto& o) { o.token = kToken; }));
  ASSERT_TRUE(s.status().ok()) << s.status();
  std::string body;
  // The page holds no data: a browser must be able to load it to ask for
  // the token.
  EXPECT_EQ(Curl("'" + s.url("/debug/lockprof/") + "'", &body), 200);
  EXPECT_NE(body.find("<!doctype html>"), std::string::npos);
  // Everything else, the page's own fetches included, needs the token.
  for (const char* path :
       {"/debug/lockprof/profile.json?name=mutex", "/debug/lockprof/profile.json", "/metrics",
        "/debug/lockprof", "/debug/lockprof/x", "/debug/lockprof//", "/debug/pprof/mutex"}) {
    SCOPED_TRACE(path);
    EXPECT_EQ(Curl("'" + s.url(path) + "'"), 401);
    EXPECT_EQ(Curl("-H 'Authorization: Bearer wrong' '" + s.url(path) + "'"), 401);
  }
  const std::string auth = "-H 'Authorization: Bearer " + std::string(kToken) + "' ";
  EXPECT_EQ(Curl(auth + "'" + s.url("/debug/lockprof/profile.json?name=mutex") + "'", &body), 200);
  EXPECT_EQ(body.rfind(R"({"profile":"mutex")", 0), 0u) << body;
  EXPECT_EQ(Curl(auth + "'" + s.url("/metrics") + "'"), 200);
}

// Mounted in a host's server through HandleAdminRequest: the same paths and
// the same exemption as the built-in server.
TEST(ContentionPageTest, HostMountedWithTheSameTokenRule) {
  lockprof::AdminHandlerOptions options;
  options.token = kToken;
  lockprof::AdminRequest req;
  req.path = "/debug/lockprof/";
  lockprof::AdminResponse r = lockprof::HandleAdminRequest(req, options);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.rfind("<!doctype html>", 0), 0u);
  req.path = "/debug/lockprof/profile.json";
  req.query = "name=mutex";
  EXPECT_EQ(lockprof::HandleAdminRequest(req, options).status, 401);
  req.authorization = "Bearer " + std::string(kToken);
  r = lockprof::HandleAdminRequest(req, options);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.rfind(R"({"profile":"mutex")", 0), 0u) << r.body;
}

// Over TLS the page and its data are served as over plain HTTP; the page's
// fetches are relative, so they stay on the same https origin.
TEST(ContentionPageTest, ServedOverTlsWithTheToken) {
  const ScopedCert cert;
  ASSERT_TRUE(cert.ok());
  Server s(cert.TlsWithToken(kToken));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const std::string tls = "--cacert " + cert.cert() + " ";
  std::string body;
  EXPECT_EQ(Curl(tls + s.url("/debug/lockprof/", "https"), &body), 200);
  EXPECT_NE(body.find("<!doctype html>"), std::string::npos);
  const std::string json = "'" + s.url("/debug/lockprof/profile.json?name=block", "https") + "'";
  EXPECT_EQ(Curl(tls + json), 401);
  EXPECT_EQ(Curl(tls + "-H 'Authorization: Bearer " + std::string(kToken) + "' " + json, &body),
            200);
  EXPECT_EQ(body.rfind(R"({"profile":"block")", 0), 0u) << body;
}

}  // namespace
