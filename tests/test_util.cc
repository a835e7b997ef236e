#include "test_util.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "lockprof/agent/metrics.h"
#include "lockprof/agent/profiles.h"
#include "lockprof/agent/sampling.h"

namespace lockprof::testing {

std::string RunCommand(const std::string& command, int* status) {
  std::string out;
  FILE* f = popen(command.c_str(), "r");
  if (f == nullptr) {
    if (status) *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int rc = pclose(f);
  if (status) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

bool InFreshProcess() {
  static constexpr char kMark[] = "LOCKPROF_TEST_IN_FRESH_PROCESS";
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = std::string(test->test_suite_name()) + "." + test->name();
  // Already alone: the new process, or a run of this test only (as ctest's).
  if (std::getenv(kMark) != nullptr || GTEST_FLAG_GET(filter) == name) return true;
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    ADD_FAILURE() << "readlink(/proc/self/exe): " << std::strerror(errno);
    return false;
  }
  self[n] = '\0';
  int status = -1;
  const std::string out = RunCommand(
      std::string(kMark) + "=1 '" + self + "' --gtest_filter='" + name + "' 2>&1", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("[  PASSED  ] 1 test."), std::string::npos) << out;
  return false;
}

static std::string Gunzip(const std::string& data) {
  if (data.size() < 2 || uint8_t(data[0]) != 0x1f || uint8_t(data[1]) != 0x8b) return data;
  z_stream zs{};
  inflateInit2(&zs, 15 + 16);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = uInt(data.size());
  std::string out;
  char buf[65536];
  int r;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    r = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
  } while (r == Z_OK);
  inflateEnd(&zs);
  EXPECT_EQ(r, Z_STREAM_END) << "bad gzip stream";
  return out;
}

perftools::profiles::Profile ParseProfile(const std::string& data) {
  perftools::profiles::Profile p;
  EXPECT_TRUE(p.ParseFromString(Gunzip(data))) << "not a profile.proto";
  return p;
}

size_t CountOf(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != s.npos; at = s.find(needle, at + 1)) ++n;
  return n;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SpinFor(int64_t ns) {
  const int64_t end = NowNanos() + ns;
  while (NowNanos() < end) {
  }
}

bool IsAsleep(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(in, line);
  const size_t paren = line.rfind(')');  // The thread's name may hold spaces and ')'.
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S';
}

pid_t ThisThreadId() { return pid_t(syscall(SYS_gettid)); }

int64_t ThreadVoluntarySwitches() {
  rusage u{};
  EXPECT_EQ(getrusage(RUSAGE_THREAD, &u), 0);
  return int64_t(u.ru_nvcsw);
}

int64_t Percentile(std::vector<int64_t> values, double q) {
  if (values.empty()) return 0;
  const size_t i = std::min(values.size() - 1, size_t(q * double(values.size())));
  std::nth_element(values.begin(), values.begin() + ptrdiff_t(i), values.end());
  return values[i];
}

bool WaitFor(const std::function<bool()>& done, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

bool WaitUntilAsleep(pid_t tid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!IsAsleep(tid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

std::vector<std::thread> StartBlocked(int n, const std::function<void()>& body) {
  std::vector<std::atomic<pid_t>> tids(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < size_t(n); ++i) {
    threads.emplace_back([&tids, i, body] {
      tids[i] = ThisThreadId();
      body();
    });
  }
  for (std::atomic<pid_t>& tid : tids) {
    while (tid.load() == 0) std::this_thread::yield();
    EXPECT_TRUE(WaitUntilAsleep(tid.load())) << "thread " << tid.load() << " never blocked";
  }
  return threads;
}

long StatusKiB(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  }
  return -1;
}

bool ResetPeakMemory() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return bool(out);
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string WriteTempFile(const std::string& data, const std::string& suffix) {
  std::string path = ::testing::TempDir() + "lockprof_XXXXXX" + suffix;
  std::vector<char> tmpl(path.begin(), path.end());
  tmpl.push_back('\0');
  int fd = mkstemps(tmpl.data(), int(suffix.size()));
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(tmpl.data(), std::ios::binary) << data;
  return tmpl.data();
}

std::vector<std::string> StackFunctions(const perftools::profiles::Profile& p,
                                        const perftools::profiles::Sample& s) {
  std::unordered_map<uint64_t, const perftools::profiles::Location*> locs;
  std::unordered_map<uint64_t, const perftools::profiles::Function*> fns;
  for (const auto& l : p.location()) locs[l.id()] = &l;
  for (const auto& f : p.function()) fns[f.id()] = &f;
  std::vector<std::string> names;
  for (uint64_t id : s.location_id()) {
    const auto* loc = locs[id];
    if (loc == nullptr) continue;
    for (const auto& line : loc->line()) {
      const auto* fn = fns[line.function_id()];
      if (fn) names.push_back(p.string_table(int(fn->name())));
    }
  }
  return names;
}

std::vector<const perftools::profiles::Sample*> SamplesForLock(
    const perftools::profiles::Profile& p, const std::string& lock) {
  std::vector<const perftools::profiles::Sample*> out;
  for (const auto& s : p.sample()) {
    for (const auto& l : s.label()) {
      if (p.string_table(int(l.key())) == "lock" && p.string_table(int(l.str())) == lock) {
        out.push_back(&s);
      }
    }
  }
  return out;
}

int64_t NumLabel(const perftools::profiles::Profile& p, const perftools::profiles::Sample& s,
                 const std::string& key) {
  for (const auto& l : s.label()) {
    if (p.string_table(int(l.key())) == key && l.str() == 0) return l.num();
  }
  return -1;
}

int64_t SumValues(const perftools::profiles::Profile& p, int index, const std::string& function) {
  return SumValuesWithLabels(p, index, function, {});
}

int64_t SumValuesWithLabels(const perftools::profiles::Profile& p, int index,
                            const std::string& function,
                            const std::vector<std::pair<std::string, std::string>>& labels) {
  int64_t sum = 0;
  for (const auto& s : p.sample()) {
    if (!function.empty()) {
      auto names = StackFunctions(p, s);
      if (std::none_of(names.begin(), names.end(), [&](const std::string& n) {
            return n.find(function) != std::string::npos;
          })) {
        continue;
      }
    }
    if (std::any_of(labels.begin(), labels.end(),
                    [&](const auto& kv) { return LabelValue(p, s, kv.first) != kv.second; })) {
      continue;
    }
    sum += s.value(index);
  }
  return sum;
}

std::string LabelValue(const perftools::profiles::Profile& p, const perftools::profiles::Sample& s,
                       const std::string& key) {
  for (const auto& l : s.label()) {
    if (l.str() != 0 && p.string_table(int(l.key())) == key) return p.string_table(int(l.str()));
  }
  return "";
}

std::string FetchProfileBytes(const std::string& name, int debug) {
  std::ostringstream out;
  EXPECT_TRUE(lockprof::WriteProfile(name, debug, out).ok()) << name;
  return out.str();
}

perftools::profiles::Profile FetchProfile(const std::string& name) {
  return ParseProfile(FetchProfileBytes(name));
}

std::string FetchProfileToFile(const std::string& name) {
  return WriteTempFile(FetchProfileBytes(name), ".pb.gz");
}

ProfileDelta::ProfileDelta(std::string profile, int index, std::string function,
                           std::vector<std::pair<std::string, std::string>> labels)
    : profile_(std::move(profile)),
      index_(index),
      function_(std::move(function)),
      labels_(std::move(labels)),
      before_(Current()) {}

int64_t ProfileDelta::Current() const {
  return SumValuesWithLabels(FetchProfile(profile_), index_, function_, labels_);
}

// A negative fraction or hold rate only reads (sampling.h); a negative block
// rate would turn it off, so kKeep is checked there.
ScopedRates::ScopedRates(int mutex_fraction, int64_t block_rate_ns, int hold_rate)
    : fraction_(SetMutexProfileFraction(mutex_fraction)),
      block_(BlockProfileRate()),
      hold_(SetHoldProfileRate(hold_rate)) {
  if (block_rate_ns != kKeep) SetBlockProfileRate(block_rate_ns);
}

ScopedRates::~ScopedRates() {
  SetMutexProfileFraction(fraction_);
  SetBlockProfileRate(block_);
  SetHoldProfileRate(hold_);
}

int64_t SumValuesWithLabel(const perftools::profiles::Profile& p, int index, const std::string& key,
                           const std::string& value) {
  return SumValuesWithLabels(p, index, "", {{key, value}});
}

std::string GoEnv() {
  // go needs a cache directory; keep it per user and off the network.
  return "GOCACHE=/tmp/lockprof-gocache HOME=${HOME:-/tmp} GOFLAGS=-mod=mod GOPROXY=off "
         "PPROF_TMPDIR=/tmp ";
}

std::string GoPprof(const std::string& args, int* status) {
  return RunCommand(GoEnv() + "go tool pprof " + args + " 2>&1", status);
}

std::string TopFunction(const std::string& top) {
  std::istringstream in(top);
  std::string line;
  bool table = false;
  while (std::getline(in, line)) {
    if (line.find("flat%") != std::string::npos) {
      table = true;
      continue;
    }
    if (table && !line.empty()) return line;
  }
  return "";
}

std::string HttpGet(int port, const std::string& path_and_query, int* status,
                    std::string* headers) {
  std::string body_file = WriteTempFile("");
  std::string header_file = WriteTempFile("");
  std::string code = RunCommand("curl -s -g -o " + body_file + " -D " + header_file +
                                " -w '%{http_code}' 'http://127.0.0.1:" + std::to_string(port) +
                                path_and_query + "'");
  if (status) *status = std::atoi(code.c_str());
  std::ifstream bf(body_file, std::ios::binary), hf(header_file, std::ios::binary);
  std::stringstream body, hdr;
  body << bf.rdbuf();
  hdr << hf.rdbuf();
  if (headers) {
    *headers = hdr.str();
    std::transform(headers->begin(), headers->end(), headers->begin(),
                   [](unsigned char c) { return std::tolower(c); });
  }
  std::remove(body_file.c_str());
  std::remove(header_file.c_str());
  return body.str();
}

Child::Child(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  // Everything the child needs is built before fork(): a child of a
  // multithreaded process must not allocate (another thread may have held
  // the allocator's lock at the fork) before it execs.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& kv : env) envp.push_back(const_cast<char*>(kv.c_str()));
  // Inherited entries that `env` sets are left out: the dynamic loader
  // reads the last LD_PRELOAD, getenv() the first.
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view inherited(*e);
    const std::string_view name = inherited.substr(0, inherited.find('=') + 1);
    const bool overridden = std::any_of(env.begin(), env.end(), [&](const std::string& kv) {
      return std::string_view(kv).substr(0, name.size()) == name;
    });
    if (!overridden) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    // If the test dies (a sanitizer's halt_on_error, a crash) the child
    // must not outlive it: it would hold ctest's output pipe open, and ctest
    // would wait for it until its timeout.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  out_fd_ = fds[0];
}

Child::~Child() {
  if (pid_ > 0) Stop();
  if (out_fd_ >= 0) close(out_fd_);
}

std::string Child::WaitForLine(const std::string& needle, int timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    size_t nl;
    while ((nl = buffered_.find('\n')) != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      if (line.find(needle) != std::string::npos) return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "";
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, int(left.count())) <= 0) return "";
    char buf[4096];
    ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) return "";
    buffered_.append(buf, size_t(n));
  }
}

int Child::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int Child::Wait(int timeout_s) {
  if (pid_ <= 0) return -1;
  int status = 0;
  for (int waited_ms = 0; waitpid(pid_, &status, WNOHANG) == 0; waited_ms += 10) {
    if (waited_ms >= timeout_s * 1000) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    usleep(10000);
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double MetricValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, series.size(), series) == 0 && line.size() > series.size() &&
        line[series.size()] == ' ') {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return NAN;
}

std::string ScrapeMetrics() {
  std::string out;
  lockprof::WriteMetrics(&out);
  return out;
}

bool DiedOfAbort(int status) {
  return (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) ||
         (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGABRT);
}

std::string WaitForWaiters(int port, size_t n) {
  std::string json;
  for (int i = 0; i < 600; ++i) {
    int status = 0;
    json = HttpGet(port, "/debug/lockprof/held?format=json", &status);
    if (status == 200 && CountOf(json, "\"waited_ns\":") >= n) return json;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return json;
}

int64_t NumberAfter(const std::string& text, const std::string& key, size_t from) {
  const size_t at = text.find(key, from);
  return at == text.npos ? -1 : std::stoll(text.substr(at + key.size()));
}

int PortFromLine(const std::string& line) {
  size_t at = line.find("http://127.0.0.1:");
  if (at == std::string::npos) return 0;
  return std::atoi(line.c_str() + at + std::strlen("http://127.0.0.1:"));
}

}  // namespace lockprof::testing
