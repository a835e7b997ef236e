// Test helper: runs tools/pyroscope_receiver (a strict stand-in for
// Pyroscope's /ingest, built with `go build` on first use) and reads what it
// accepted. Header-only: included by the uploader tests.
#ifndef LOCKPROF_TESTS_PYROSCOPE_RECEIVER_H_
#define LOCKPROF_TESTS_PYROSCOPE_RECEIVER_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace lockprof::testing {

// One accepted upload: its .meta lines and the profile as received.
struct Upload {
  int seq = 0;
  std::map<std::string, std::string> meta;
  std::string profile_path;  // The .pb.gz file.
  int64_t from() const { return std::atoll(meta.at("from").c_str()); }
  int64_t until() const { return std::atoll(meta.at("until").c_str()); }
};

// One line of requests.log.
struct ReceivedRequest {
  int64_t unix_ms;
  int status;
  std::string message;
};

class Receiver {
 public:
  // `flags`: extra receiver flags (-mode=500, -basic-auth=u:p, ...).
  explicit Receiver(const std::vector<std::string>& flags = {}) {
    dir_ = RunCommand("mktemp -d /tmp/lockprof_receiver_XXXXXX");
    dir_.erase(dir_.find_last_not_of('\n') + 1);
    std::vector<std::string> argv = {Binary(), "-dir=" + dir_};
    argv.insert(argv.end(), flags.begin(), flags.end());
    // go tool pprof, run by the receiver, needs a cache and no network.
    child_ = std::make_unique<Child>(
        argv, std::vector<std::string>{"GOCACHE=/tmp/lockprof-gocache", "HOME=/tmp",
                                       "PPROF_TMPDIR=/tmp", "GOPROXY=off"});
    // "listening on http://127.0.0.1:PORT", or https:// with -tls-cert.
    const std::string line = child_->WaitForLine("listening on", 60);
    if (line.find("https://") != std::string::npos) scheme_ = "https";
    const size_t at = line.find("://127.0.0.1:");
    if (at != std::string::npos) port_ = std::atoi(line.c_str() + at + 13);
    EXPECT_GT(port_, 0) << "pyroscope-receiver did not start";
  }
  ~Receiver() {
    child_.reset();
    RunCommand("rm -rf " + dir_);
  }

  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

  void SetMode(const std::string& mode) {
    RunCommand("curl -sk -X POST '" + url() + "/-/mode?set=" + mode + "'");
  }

  // Accepted uploads, in arrival order; `metric` filters on Pyroscope's
  // __name__ (mutex, block, hold_duration, ...) unless empty.
  std::vector<Upload> Uploads(const std::string& metric = "") const {
    std::vector<Upload> out;
    std::istringstream files(RunCommand("ls " + dir_ + " | grep '\\.meta$'"));
    std::string name;
    while (std::getline(files, name)) {
      Upload u;
      u.seq = std::atoi(name.c_str());
      u.profile_path = dir_ + "/" + name.substr(0, name.size() - 5) + ".pb.gz";
      std::ifstream in(dir_ + "/" + name);
      std::string line;
      while (std::getline(in, line)) {
        size_t eq = line.find('=');
        if (eq != std::string::npos) u.meta[line.substr(0, eq)] = line.substr(eq + 1);
      }
      if (metric.empty() || u.meta["metric"] == metric) out.push_back(std::move(u));
    }
    std::sort(out.begin(), out.end(),
              [](const Upload& a, const Upload& b) { return a.seq < b.seq; });
    return out;
  }

  std::vector<ReceivedRequest> Requests() const {
    std::vector<ReceivedRequest> out;
    std::ifstream in(dir_ + "/requests.log");
    std::string line;
    while (std::getline(in, line)) {
      ReceivedRequest r;
      std::istringstream fields(line);
      fields >> r.unix_ms >> r.status;
      std::getline(fields, r.message);
      out.push_back(r);
    }
    return out;
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  static std::string Binary() {
    static const std::string path = [] {
      std::string bin = "/tmp/lockprof_pyroscope_receiver_" + std::to_string(getpid());
      int status;
      std::string out =
          RunCommand(GoEnv() + "go build -o " + bin +
                         " " LOCKPROF_SOURCE_DIR "/tools/pyroscope_receiver/*.go 2>&1",
                     &status);
      EXPECT_EQ(status, 0) << out;
      std::atexit([] {
        std::remove(("/tmp/lockprof_pyroscope_receiver_" + std::to_string(getpid())).c_str());
      });
      return bin;
    }();
    return path;
  }

  std::string dir_;
  std::unique_ptr<Child> child_;
  int port_ = 0;
  std::string scheme_ = "http";
};

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_PYROSCOPE_RECEIVER_H_
