// Helpers shared by the tests: running commands (go tool pprof, curl) and
// decoding profiles.
#ifndef LOCKPROF_TESTS_TEST_UTIL_H_
#define LOCKPROF_TESTS_TEST_UTIL_H_

#include <string>
#include <vector>

#include "profile.pb.h"

namespace lockprof::testing {

// Runs `command` through /bin/sh; returns its stdout and sets *status to its
// exit status.
std::string RunCommand(const std::string& command, int* status = nullptr);

// Decodes a gzipped (or raw) profile.proto. Fails the test on error.
perftools::profiles::Profile ParseProfile(const std::string& data);

// Writes `data` to a new temporary file and returns its path.
std::string WriteTempFile(const std::string& data, const std::string& suffix = "");

// The sum of value[index] over the samples whose stacks contain a function
// whose name contains `function` (all samples if empty).
int64_t SumValues(const perftools::profiles::Profile& p, int index,
                  const std::string& function = "");

// Names of the functions in a sample's stack, leaf first.
std::vector<std::string> StackFunctions(const perftools::profiles::Profile& p,
                                        const perftools::profiles::Sample& s);

// Environment prefix for running go (GOCACHE, HOME, no network).
std::string GoEnv();

// An HTTP request with curl to 127.0.0.1:port. Returns the body; sets the
// HTTP status and the response headers (lower-cased names, one per line).
std::string HttpGet(int port, const std::string& path_and_query, int* status = nullptr,
                    std::string* headers = nullptr);

// `go tool pprof <args>` with the test environment; returns its output
// (stdout and stderr) and sets *status.
std::string GoPprof(const std::string& args, int* status = nullptr);

// A child process whose stdout is read line by line.
class Child {
 public:
  // Starts argv[0] with `argv`; extra environment entries ("K=V") added.
  explicit Child(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Child();  // SIGTERM, then wait.
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Reads stdout until a line contains `needle` (returned) or EOF / timeout
  // ("" then).
  std::string WaitForLine(const std::string& needle, int timeout_s = 30);
  // Sends SIGTERM and returns the exit status.
  int Stop();
  // Waits for the child to exit by itself, killing it (SIGKILL) after
  // `timeout_s`; returns its exit status, or -1 if it did not exit normally.
  int Wait(int timeout_s = 60);
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  int out_fd_ = -1;
  std::string buffered_;
};

// The port in a line containing "http://127.0.0.1:PORT", or 0.
int PortFromLine(const std::string& line);

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_TEST_UTIL_H_
