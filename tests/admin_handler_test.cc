// HandleAdminRequest mounted in a host's own HTTP server (cpp-httplib's
// Server, as a host would use it, on its own port): go tool pprof and curl
// read it as they read the built-in server, which answers the same paths
// with the same bytes; the token is checked; a ?seconds=N window answered
// asynchronously holds no host thread, and ends with the process (answered)
// or is not inherited by a forked child.
#include "lockprof/server/admin_handler.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "lifecycle_util.h"
#include "lockprof/lockprof.h"
#include "lockprof/server/handlers/delta_handlers.h"
#include "test_util.h"

// A forked child below starts a window's thread.
LOCKPROF_ALLOW_THREADS_AFTER_FORK()

namespace {

using lockprof::AdminRequest;
using lockprof::AdminResponse;
using lockprof::testing::GoPprof;
using lockprof::testing::HttpGet;
using lockprof::testing::ParseProfile;
using lockprof::testing::SamplesForLock;
using lockprof::testing::ScopedRates;
using lockprof::testing::StartBlocked;

lockprof::Mutex g_mounted_mu{"mounted.lock"};

// A contended critical section under a name the profiles must show.
ABSL_ATTRIBUTE_NOINLINE void MountedHolder() {
  std::vector<std::thread> waiters;
  {
    lockprof::MutexLock l(&g_mounted_mu);
    waiters = StartBlocked(2, [] { lockprof::MutexLock w(&g_mounted_mu); });
  }
  for (std::thread& t : waiters) t.join();
}

AdminRequest FromHttplib(const httplib::Request& req) {
  AdminRequest out;
  out.method = req.method;
  out.path = req.path;
  if (size_t q = req.target.find('?'); q != std::string::npos) out.query = req.target.substr(q + 1);
  out.authorization = req.get_header_value("Authorization");
  out.body = req.body;
  return out;
}

void ToHttplib(const AdminResponse& in, httplib::Response& out) {
  out.status = in.status;
  std::string type;
  for (const auto& [name, value] : in.headers) {
    if (name == "Content-Type") {
      type = value;
    } else {
      out.set_header(name, value);
    }
  }
  out.set_content(in.body, type);
}

// The host: an httplib::Server whose handlers call HandleAdminRequest.
class HostServer {
 public:
  explicit HostServer(lockprof::AdminHandlerOptions options = {}) {
    auto handler = [options](const httplib::Request& req, httplib::Response& res) {
      ToHttplib(lockprof::HandleAdminRequest(FromHttplib(req), options), res);
    };
    http_.Get(".*", handler);
    http_.Post(".*", handler);
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    while (!http_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~HostServer() {
    http_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
};

TEST(AdminHandlerTest, GoToolPprofReadsTheMountedEndpoint) {
  ScopedRates all(1, 1, 1);
  HostServer host;
  ASSERT_GT(host.port(), 0);
  MountedHolder();
  const std::string url = "http://127.0.0.1:" + std::to_string(host.port());
  int status = -1;
  const std::string top =
      GoPprof("-top -sample_index=delay -tagfocus=lock=mounted.lock " + url + "/debug/pprof/mutex",
              &status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_NE(top.find("MountedHolder"), std::string::npos) << top;
  const std::string metrics = HttpGet(host.port(), "/metrics", &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(metrics.find("lockprof_lock_contentions_total{lock=\"mounted.lock\"}"),
            std::string::npos)
      << metrics;
  const std::string profile = HttpGet(host.port(), "/debug/pprof/block", &status);
  EXPECT_EQ(status, 200);
  EXPECT_FALSE(SamplesForLock(ParseProfile(profile), "mounted.lock").empty());
}

TEST(AdminHandlerTest, AnswersAsTheBuiltInServerDoes) {
  HostServer host;
  ASSERT_TRUE(lockprof::StartAdminServer({.port = 0}).ok());
  const int builtin = lockprof::AdminServerPort();
  // Paths whose answers do not change between two requests: errors, the
  // redirect, text that does not depend on time.
  for (const char* path :
       {"/debug/pprof/nosuch", "/debug/pprof/mutex?debug=7", "/debug/pprof/mutex?seconds=x",
        "/debug/pprof/mutex?seconds=100000", "/debug/pprof/delta_nosuch", "/debug/pprof",
        "/nowhere", "/debug/pprof/cmdline", "/debug/pprof/symbol"}) {
    int mounted_status = -1, builtin_status = -1;
    std::string mounted_headers, builtin_headers;
    const std::string mounted = HttpGet(host.port(), path, &mounted_status, &mounted_headers);
    const std::string direct = HttpGet(builtin, path, &builtin_status, &builtin_headers);
    EXPECT_EQ(mounted_status, builtin_status) << path;
    EXPECT_EQ(mounted, direct) << path;
    for (const char* header : {"content-type:", "x-go-pprof:", "location:"}) {
      const bool in_mounted = mounted_headers.find(header) != std::string::npos;
      EXPECT_EQ(in_mounted, builtin_headers.find(header) != std::string::npos)
          << path << " " << header;
    }
  }
  lockprof::StopAdminServer();
}

TEST(AdminHandlerTest, TokenIsRequired) {
  HostServer host({.token = "s3cret"});
  int status = -1;
  std::string headers;
  HttpGet(host.port(), "/debug/pprof/mutex", &status, &headers);
  EXPECT_EQ(status, 401);
  EXPECT_NE(headers.find("www-authenticate: bearer"), std::string::npos) << headers;
  AdminRequest req;
  req.path = "/metrics";
  req.authorization = "Bearer wrong";
  EXPECT_EQ(lockprof::HandleAdminRequest(req, {.token = "s3cret"}).status, 401);
  req.authorization = "Bearer s3cret";
  EXPECT_EQ(lockprof::HandleAdminRequest(req, {.token = "s3cret"}).status, 200);
}

TEST(AdminHandlerTest, AsyncWindowHoldsNoCallerThread) {
  ScopedRates all(1, 1, 1);
  MountedHolder();  // Before the window: not in it.
  AdminRequest req;
  req.path = "/debug/pprof/block";
  req.query = "seconds=2";
  std::promise<AdminResponse> answered;
  const auto start = std::chrono::steady_clock::now();
  lockprof::HandleAdminRequestAsync(req, [&](AdminResponse r) { answered.set_value(r); });
  const auto returned = std::chrono::steady_clock::now() - start;
  EXPECT_LT(returned, std::chrono::milliseconds(500)) << "the caller's thread waited";
  // The window has taken its starting snapshot once it waits.
  while (lockprof::server::ActiveDeltaWaits() == 0) std::this_thread::yield();
  MountedHolder();  // Inside the window.
  AdminResponse r = answered.get_future().get();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1900));
  ASSERT_EQ(r.status, 200) << r.body;
  const perftools::profiles::Profile profile = ParseProfile(r.body);
  const auto samples = SamplesForLock(profile, "mounted.lock");
  ASSERT_FALSE(samples.empty());
  int64_t count = 0;
  for (const auto* s : samples) count += s->value(0);
  EXPECT_EQ(count, 2) << "exactly the two waits inside the window";
}

TEST(AdminHandlerTest, AsyncWindowEndsWhenTheClientGoes) {
  AdminRequest req;
  req.path = "/debug/pprof/mutex";
  req.query = "seconds=60";
  std::atomic<bool> gone{false};
  req.cancelled = [&gone] { return gone.load(); };
  std::promise<int> answered;
  lockprof::HandleAdminRequestAsync(req, [&](AdminResponse r) { answered.set_value(r.status); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  gone = true;
  std::future<int> status = answered.get_future();
  ASSERT_EQ(status.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the window outlived its client";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

// A host's own windows take no room from the built-in server's: with room
// for two windows there (max_threads 4) and two host windows open, the
// built-in server still serves one. Before, every window counted against
// one process-wide limit, and it answered 503.
TEST(AdminHandlerTest, HostWindowsLeaveTheBuiltInServerItsOwn) {
  lockprof::AdminServerOptions o;
  o.address = "127.0.0.1";
  o.port = 0;
  o.max_threads = 4;
  ASSERT_TRUE(lockprof::StartAdminServer(o).ok());
  const int windows_before = lockprof::server::ActiveDeltaWaits();
  std::atomic<bool> gone{false};
  std::promise<void> first, second;
  std::promise<void>* answered[] = {&first, &second};
  for (std::promise<void>* p : answered) {
    AdminRequest req;
    req.path = "/debug/pprof/mutex";
    req.query = "seconds=60";
    req.cancelled = [&gone] { return gone.load(); };
    lockprof::HandleAdminRequestAsync(req, [p](AdminResponse) { p->set_value(); });
  }
  while (lockprof::server::ActiveDeltaWaits() < windows_before + 2) std::this_thread::yield();
  int status = 0;
  HttpGet(lockprof::AdminServerPort(), "/debug/pprof/mutex?seconds=1", &status);
  EXPECT_EQ(status, 200);
  gone = true;
  first.get_future().wait();
  second.get_future().wait();
  lockprof::StopAdminServer();
}

AdminRequest Window(int seconds, std::function<bool()> cancelled = nullptr) {
  AdminRequest req;
  req.path = "/debug/pprof/mutex";
  req.query = "seconds=" + std::to_string(seconds);
  req.cancelled = std::move(cancelled);
  return req;
}

// A window open when the process exits is answered within the exit's grace,
// saying why (503), so that the host's client is told rather than dropped,
// and the exit does not wait out the window.
TEST(AdminHandlerTest, AWindowOpenAtExitIsAnsweredAndTheExitIsPrompt) {
  const auto start = std::chrono::steady_clock::now();
  const auto child = lockprof::testing::RunInForkedChild([](int out) {
    lockprof::HandleAdminRequestAsync(Window(60), [out](AdminResponse r) {
      const std::string line = "answered " + std::to_string(r.status) + "\n";
      (void)!write(out, line.data(), line.size());
    });
    while (lockprof::server::ActiveDeltaWaits() == 0) std::this_thread::yield();
    std::exit(7);
    return 0;
  });
  EXPECT_EQ(child.exit_code, 7) << child.output;
  EXPECT_EQ(child.output, "answered 503\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// A forked child inherits none of its parent's windows (their threads are
// not in it): a parent at the limit of windows leaves its child room.
TEST(AdminHandlerTest, AForkedChildHasRoomForWindowsWhenItsParentHasNone) {
  std::atomic<bool> gone{false};
  std::atomic<int> ended{0}, refused{0};
  int opened = 0;
  // Windows until the limit answers 503 (at once, on this thread).
  for (; opened < 1000 && refused.load() == 0; ++opened) {
    lockprof::HandleAdminRequestAsync(
        Window(60, [&gone] { return gone.load(); }),
        [&](AdminResponse r) { (r.status == 503 ? refused : ended).fetch_add(1); });
  }
  ASSERT_EQ(refused.load(), 1) << "no limit on windows";
  const auto child = lockprof::testing::RunInForkedChild([](int out) {
    std::promise<int> status;
    lockprof::HandleAdminRequestAsync(Window(1),
                                      [&status](AdminResponse r) { status.set_value(r.status); });
    const std::string line = std::to_string(status.get_future().get());
    (void)!write(out, line.data(), line.size());
    return 0;
  });
  gone = true;
  EXPECT_EQ(child.output, "200");
  while (ended.load() < opened - 1) std::this_thread::yield();
}

// Windows take at most half the asynchronous requests' room: with 64
// windows asked for, a scrape of /metrics is still answered. Before, the
// windows took all 64 and every other request got 503 until they ended.
TEST(AdminHandlerTest, AsyncWindowsLeaveRoomForEverythingElse) {
  std::atomic<bool> gone{false};
  std::atomic<int> ended{0}, refused{0};
  constexpr int kWindows = 64;
  for (int i = 0; i < kWindows; ++i) {
    lockprof::HandleAdminRequestAsync(
        Window(60, [&gone] { return gone.load(); }),
        [&](AdminResponse r) { (r.status == 503 ? refused : ended).fetch_add(1); });
  }
  EXPECT_EQ(refused.load(), kWindows / 2);
  AdminRequest metrics;
  metrics.path = "/metrics";
  std::promise<int> status;
  lockprof::HandleAdminRequestAsync(metrics,
                                    [&status](AdminResponse r) { status.set_value(r.status); });
  EXPECT_EQ(status.get_future().get(), 200);
  gone = true;
  while (ended.load() + refused.load() < kWindows) std::this_thread::yield();
}

// LOCKPROF_ADMIN_TOKEN is read once, at the first request, not on each: a
// getenv() on the host's request threads could walk the environment while
// another thread's setenv() freed it. So a token set when the first request
// came stays required after the variable goes.
TEST(AdminHandlerTest, TheEnvironmentsTokenIsReadOnceAtTheFirstRequest) {
  if (!lockprof::testing::InFreshProcess()) return;  // Needs the first request.
  setenv("LOCKPROF_ADMIN_TOKEN", "env-token", 1);
  AdminRequest req;
  req.path = "/metrics";
  EXPECT_EQ(lockprof::HandleAdminRequest(req).status, 401);
  unsetenv("LOCKPROF_ADMIN_TOKEN");
  EXPECT_EQ(lockprof::HandleAdminRequest(req).status, 401);
  req.authorization = "Bearer env-token";
  EXPECT_EQ(lockprof::HandleAdminRequest(req).status, 200);
}

}  // namespace
