// The precedence rule between the environment and code (README "The admin
// endpoint", agent/base/service.h): every combination of the variable set or
// not, a start in code or not, and the port free or taken by another
// process, for the admin server and the uploader. None may fail the
// program's start: a start in code returns OK whenever the environment is
// involved, and a process that finds the environment's port taken says so
// once and runs on.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pyroscope_receiver.h"
#include "test_util.h"

namespace {

using lockprof::testing::Child;
using lockprof::testing::FreeLoopbackPort;
using lockprof::testing::HttpGet;
using lockprof::testing::ParseProfile;
using lockprof::testing::ReadFile;
using lockprof::testing::Receiver;
using lockprof::testing::RunCommand;
using lockprof::testing::Upload;
using lockprof::testing::WriteTempFile;

// lockprof-precedence-child, its stderr kept in a file, and what it printed
// up to "ready" ("admin start", "admin address", ...: see the child).
class PrecedenceChild {
 public:
  PrecedenceChild(const std::string& name, const std::vector<std::string>& flags,
                  const std::vector<std::string>& env)
      : stderr_path_(WriteTempFile("", ".stderr")) {
    std::string command = std::string("exec ") + LOCKPROF_PRECEDENCE_CHILD_PATH + " " + name;
    for (const std::string& f : flags) command += " '" + f + "'";
    child_ = std::make_unique<Child>(
        std::vector<std::string>{"/bin/sh", "-c", command + " 2>" + stderr_path_}, env);
    for (std::string line; (line = child_->WaitForLine("")) != "" && line != "ready";) {
      const size_t colon = line.find(": ");
      if (colon != std::string::npos) {
        said_[line.substr(0, colon)] = line.substr(colon + 2);
      }
    }
  }
  ~PrecedenceChild() { std::remove(stderr_path_.c_str()); }

  // What the child printed after "<what>: ", or "(not said)".
  std::string Said(const std::string& what) const {
    auto it = said_.find(what);
    return it == said_.end() ? "(not said)" : it->second;
  }
  std::string Stderr() const { return ReadFile(stderr_path_); }
  // SIGTERM: the child stops its services and exits; its exit status.
  int Stop() { return child_->Stop(); }

 private:
  std::string stderr_path_;
  std::unique_ptr<Child> child_;
  std::map<std::string, std::string> said_;
};

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string Addr(int port) { return "127.0.0.1:" + std::to_string(port); }
std::string AdminEnv(int port) { return "LOCKPROF_ADMIN_ADDR=" + Addr(port); }

// The command line of the process answering on `port` (NUL-separated), or
// "" if none answers.
std::string CmdlineOn(int port, const std::string& token = "") {
  int status = 0;
  const std::string auth = token.empty() ? "" : " -H 'Authorization: Bearer " + token + "'";
  const std::string body = RunCommand("curl -s --max-time 5 -w '\\n%{http_code}'" + auth +
                                          " http://" + Addr(port) + "/debug/pprof/cmdline",
                                      &status);
  return body.size() > 4 && body.substr(body.size() - 4) == "\n200" ? body : "";
}

TEST(StartupPrecedenceTest, NeitherEnvironmentNorCodeStartsNothing) {
  PrecedenceChild child("plain", {}, {});
  EXPECT_EQ(child.Said("admin address"), "(none)");
  EXPECT_EQ(child.Said("uploader running"), "0");
  EXPECT_EQ(child.Stop(), 0);
  EXPECT_EQ(child.Stderr(), "");
}

TEST(StartupPrecedenceTest, CodeAloneServesTheCodesAddress) {
  const int code = FreeLoopbackPort();
  PrecedenceChild child("coded", {"--admin=" + Addr(code)}, {});
  EXPECT_EQ(child.Said("admin start"), "OK");
  EXPECT_EQ(child.Said("admin address"), Addr(code));
  EXPECT_NE(CmdlineOn(code).find("coded"), std::string::npos);
  EXPECT_EQ(child.Stop(), 0);
  EXPECT_EQ(child.Stderr(), "");
}

// Without the environment, a taken port is the code's own error: reported
// to the code, which here prints it and runs on. No second process may share
// the port (httplib's default SO_REUSEPORT would let it).
TEST(StartupPrecedenceTest, CodeAloneOnATakenPortGetsAnErrorAndTheOwnerKeepsIt) {
  const int code = FreeLoopbackPort();
  PrecedenceChild owner("owner", {"--admin=" + Addr(code)}, {});
  ASSERT_EQ(owner.Said("admin start"), "OK");
  PrecedenceChild child("second", {"--admin=" + Addr(code)}, {});
  EXPECT_EQ(child.Said("admin start"), "UNAVAILABLE: cannot listen on " + Addr(code));
  EXPECT_EQ(child.Said("admin address"), "(none)");
  for (int i = 0; i < 8; ++i) EXPECT_NE(CmdlineOn(code).find("owner"), std::string::npos);
  EXPECT_EQ(child.Stop(), 0);
  EXPECT_EQ(owner.Stop(), 0);
}

TEST(StartupPrecedenceTest, EnvironmentAloneServesItsAddress) {
  const int env = FreeLoopbackPort();
  PrecedenceChild child("fromenv", {}, {AdminEnv(env)});
  EXPECT_EQ(child.Said("admin address"), Addr(env));
  EXPECT_NE(CmdlineOn(env).find("fromenv"), std::string::npos);
  EXPECT_EQ(child.Stop(), 0);
  EXPECT_EQ(child.Stderr(), "");
}

// Port 0: the system chooses one, which a program that knows nothing of
// lockprof cannot ask for; lockprof says where it serves.
TEST(StartupPrecedenceTest, EnvironmentPortZeroSaysWhereItServes) {
  PrecedenceChild child("fromenv", {}, {"LOCKPROF_ADMIN_ADDR=127.0.0.1:0"});
  const std::string served = child.Said("admin address");
  ASSERT_EQ(served.rfind("127.0.0.1:", 0), 0u) << served;
  EXPECT_NE(served, "127.0.0.1:0");
  EXPECT_EQ(child.Stop(), 0);
  EXPECT_EQ(child.Stderr(),
            "lockprof: admin server: serving " + served + " (port 0 in LOCKPROF_ADMIN_ADDR)\n");
}

// Port 0 from the environment, then a start from code: the port lockprof
// announced is the one it goes on serving.
TEST(StartupPrecedenceTest, EnvironmentPortZeroKeepsTheAnnouncedPortWhenCodeTakesOver) {
  const int code = FreeLoopbackPort();
  PrecedenceChild child("zero", {"--admin=" + Addr(code)}, {"LOCKPROF_ADMIN_ADDR=127.0.0.1:0"});
  EXPECT_EQ(child.Said("admin start"), "OK");
  const std::string served = child.Said("admin address");
  ASSERT_EQ(served.rfind("127.0.0.1:", 0), 0u) << served;
  const int port = std::stoi(served.substr(std::string("127.0.0.1:").size()));
  EXPECT_NE(CmdlineOn(port).find("zero"), std::string::npos);
  EXPECT_EQ(child.Stop(), 0);
  const std::string err = child.Stderr();
  EXPECT_EQ(
      err.rfind("lockprof: admin server: serving " + served + " (port 0 in LOCKPROF_ADMIN_ADDR)\n",
                0),
      0u)
      << err;
}

// A child that inherited the variable while its parent serves the port:
// one message, and the child runs on without a server.
TEST(StartupPrecedenceTest, EnvironmentAloneOnATakenPortSaysSoOnceAndRunsOn) {
  const int env = FreeLoopbackPort();
  PrecedenceChild owner("owner", {}, {AdminEnv(env)});
  ASSERT_EQ(owner.Said("admin address"), Addr(env));
  PrecedenceChild child("inherited", {}, {AdminEnv(env)});
  EXPECT_EQ(child.Said("admin address"), "(none)");
  for (int i = 0; i < 8; ++i) EXPECT_NE(CmdlineOn(env).find("owner"), std::string::npos);
  EXPECT_EQ(child.Stop(), 0);
  EXPECT_EQ(child.Stderr(), "lockprof: admin server: cannot listen on " + Addr(env) + "\n");
  EXPECT_EQ(owner.Stop(), 0);
}

// The environment wins the address; the code's call succeeds, takes over
// with its own settings (here a token), and says once what it serves.
TEST(StartupPrecedenceTest, EnvironmentAndCodeServeTheEnvironmentsAddressWithTheCodesSettings) {
  const int env = FreeLoopbackPort();
  const int code = FreeLoopbackPort();
  PrecedenceChild child("both", {"--admin=" + Addr(code), "--token=s3cret"}, {AdminEnv(env)});
  EXPECT_EQ(child.Said("admin start"), "OK");
  EXPECT_EQ(child.Said("admin address"), Addr(env));
  int status = 0;
  HttpGet(env, "/debug/pprof/cmdline", &status);
  EXPECT_EQ(status, 401) << "the code's token";
  EXPECT_NE(CmdlineOn(env, "s3cret").find("both"), std::string::npos);
  EXPECT_EQ(CmdlineOn(code, "s3cret"), "") << "nothing on the code's address";
  EXPECT_EQ(child.Stop(), 0);
  const std::string err = child.Stderr();
  EXPECT_EQ(Count(err, "\n"), 1) << err;
  EXPECT_NE(err.find("serving " + Addr(env) + " from LOCKPROF_ADMIN_ADDR, not " + Addr(code)),
            std::string::npos)
      << err;
}

// The environment's port is taken: its start says so once; the code's call
// then serves the code's address, and says so once.
TEST(StartupPrecedenceTest, EnvironmentPortTakenAndCodeServesTheCodesAddress) {
  const int env = FreeLoopbackPort();
  const int code = FreeLoopbackPort();
  PrecedenceChild owner("owner", {}, {AdminEnv(env)});
  ASSERT_EQ(owner.Said("admin address"), Addr(env));
  PrecedenceChild child("fallback", {"--admin=" + Addr(code)}, {AdminEnv(env)});
  EXPECT_EQ(child.Said("admin start"), "OK");
  EXPECT_EQ(child.Said("admin address"), Addr(code));
  EXPECT_NE(CmdlineOn(code).find("fallback"), std::string::npos);
  EXPECT_NE(CmdlineOn(env).find("owner"), std::string::npos);
  EXPECT_EQ(child.Stop(), 0);
  const std::string err = child.Stderr();
  EXPECT_EQ(Count(err, "\n"), 2) << err;
  EXPECT_EQ(Count(err, "lockprof: admin server: cannot listen on " + Addr(env) + "\n"), 1) << err;
  EXPECT_EQ(Count(err, "; serving " + Addr(code) + " given in code instead\n"), 1) << err;
  EXPECT_EQ(owner.Stop(), 0);
}

TEST(StartupPrecedenceTest, StopThenStartAgainServesTheEnvironmentsAddress) {
  const int env = FreeLoopbackPort();
  PrecedenceChild child("restarted", {"--admin=" + Addr(FreeLoopbackPort()), "--restart"},
                        {AdminEnv(env)});
  EXPECT_EQ(child.Said("admin start"), "OK");
  EXPECT_EQ(child.Said("admin restart"), "OK");
  EXPECT_EQ(child.Said("admin address"), Addr(env));
  EXPECT_NE(CmdlineOn(env).find("restarted"), std::string::npos);
  EXPECT_EQ(child.Stop(), 0);
}

// --- The uploader. The child holds its lock 2 x 100 times at hold rate 1:
// the hold uploads must add up to exactly 200, whoever sent them.

constexpr int kHolds = 100;

int64_t UploadedHolds(const std::vector<Upload>& uploads) {
  int64_t sum = 0;
  for (const Upload& u : uploads) {
    sum += lockprof::testing::SumValuesWithLabel(ParseProfile(Receiver::ReadFile(u.profile_path)),
                                                 0, "lock", "precedence.lock");
  }
  return sum;
}

std::vector<std::string> UploaderEnv(const Receiver& r) {
  return {"LOCKPROF_PYROSCOPE_URL=" + r.url(), "LOCKPROF_PYROSCOPE_APP=fromenv",
          "LOCKPROF_PYROSCOPE_INTERVAL=1", "LOCKPROF_PYROSCOPE_PROFILES=hold",
          "LOCKPROF_HOLD_RATE=1"};
}

TEST(StartupPrecedenceTest, UploaderFromCodeAlone) {
  Receiver code;
  PrecedenceChild child("coded", {"--upload=" + code.url(), "--holds=100"},
                        {"LOCKPROF_HOLD_RATE=1"});
  EXPECT_EQ(child.Said("uploader start"), "OK");
  EXPECT_EQ(child.Stop(), 0);
  const std::vector<Upload> uploads = code.Uploads("hold_duration");
  ASSERT_EQ(uploads.size(), 1u);
  EXPECT_EQ(uploads[0].meta.at("service_name"), "coded");
  EXPECT_EQ(UploadedHolds(uploads), 2 * kHolds);
  EXPECT_EQ(child.Stderr(), "");
}

TEST(StartupPrecedenceTest, UploaderFromTheEnvironmentAlone) {
  Receiver env;
  PrecedenceChild child("fromenv", {"--holds=100"}, UploaderEnv(env));
  EXPECT_EQ(child.Said("uploader running"), "1");
  EXPECT_EQ(child.Stop(), 0);
  const std::vector<Upload> uploads = env.Uploads("hold_duration");
  ASSERT_GE(uploads.size(), 2u) << "one before the code's turn, the flush at stop";
  for (const Upload& u : uploads) EXPECT_EQ(u.meta.at("service_name"), "fromenv");
  EXPECT_EQ(UploadedHolds(uploads), 2 * kHolds);
  EXPECT_EQ(child.Stderr(), "");
}

// The code's uploader takes over the environment's: the environment's URL,
// the code's app name, and the intervals continue: none twice, none lost.
TEST(StartupPrecedenceTest, UploaderFromCodeTakesOverTheEnvironmentsAtItsUrl) {
  Receiver env;
  Receiver code;
  PrecedenceChild child("both", {"--upload=" + code.url(), "--holds=100"}, UploaderEnv(env));
  EXPECT_EQ(child.Said("uploader start"), "OK");
  EXPECT_EQ(child.Said("uploader running"), "1");
  EXPECT_EQ(child.Stop(), 0);
  EXPECT_TRUE(code.Uploads().empty()) << "the environment wins the URL";
  const std::vector<Upload> uploads = env.Uploads("hold_duration");
  ASSERT_GE(uploads.size(), 2u);
  EXPECT_EQ(uploads.front().meta.at("service_name"), "fromenv");
  EXPECT_EQ(uploads.back().meta.at("service_name"), "coded");
  for (size_t i = 1; i < uploads.size(); ++i) {
    EXPECT_EQ(uploads[i].from(), uploads[i - 1].until()) << "gap or overlap at " << i;
  }
  EXPECT_EQ(UploadedHolds(uploads), 2 * kHolds);
  const std::string err = child.Stderr();
  EXPECT_EQ(Count(err, "\n"), 1) << err;
  EXPECT_NE(err.find("lockprof: uploader: uploading to " + env.url() +
                     " from LOCKPROF_PYROSCOPE_URL, not " + code.url()),
            std::string::npos)
      << err;
}

// The environment's uploader has intervals queued behind a request its
// server never answers when code takes over: the new uploader sends them,
// once each, under the name they were collected with, and continues where
// the last of them ended. The request in flight is dropped (whether the
// server kept it cannot be known); it was collected before any hold.
TEST(StartupPrecedenceTest, UploaderFromCodeSendsTheEnvironmentsQueue) {
  Receiver env({"-mode=hang"});
  Receiver code;
  PrecedenceChild child("queue", {"--upload=" + code.url(), "--holds=100", "--queue"},
                        UploaderEnv(env));
  EXPECT_EQ(child.Said("uploader start"), "OK");
  EXPECT_EQ(child.Said("queued"), "3");
  EXPECT_EQ(child.Stop(), 0);
  const std::vector<Upload> uploads = env.Uploads("hold_duration");
  ASSERT_GE(uploads.size(), 4u) << "three queued, then the last interval";
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(uploads[i].meta.at("service_name"), "fromenv") << i;
  }
  EXPECT_EQ(uploads.back().meta.at("service_name"), "coded");
  for (size_t i = 1; i < uploads.size(); ++i) {
    EXPECT_EQ(uploads[i].from(), uploads[i - 1].until()) << "gap or overlap at " << i;
  }
  EXPECT_EQ(UploadedHolds(uploads), 2 * kHolds);
}

}  // namespace
