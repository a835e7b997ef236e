// /debug/pprof/symbol and /debug/pprof/cmdline, with curl and with go tool
// pprof symbolizing a profile that carries no names (the ?debug=1 text).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lockprof/agent/symbolize/symbolizer.h"
#include "lockprof/lockprof.h"
#include "lockprof/server/handlers/in_flight.h"
#include "test_util.h"

namespace {

using lockprof::testing::GoPprof;
using lockprof::testing::HttpGet;
using lockprof::testing::RunCommand;

ABSL_ATTRIBUTE_NOINLINE void SymbolTestSlowSection(lockprof::Mutex& mu) {
  std::lock_guard<lockprof::Mutex> lock(mu);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

std::string Hex(uintptr_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%#" PRIxPTR, v);
  return buf;
}

class SymbolEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(lockprof::StartAdminServer({"127.0.0.1", 0}).ok());
    port_ = lockprof::AdminServerPort();
  }
  void TearDown() override { lockprof::StopAdminServer(); }
  lockprof::testing::ScopedRates rates_{1, lockprof::testing::ScopedRates::kKeep,
                                        lockprof::testing::ScopedRates::kKeep};
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port_ = 0;
};

TEST_F(SymbolEndpointTest, AnswersGosProtocol) {
  int status = 0;
  std::string headers;
  EXPECT_EQ(HttpGet(port_, "/debug/pprof/symbol", &status, &headers), "num_symbols: 1\n");
  EXPECT_EQ(status, 200);
  EXPECT_NE(headers.find("content-type: text/plain; charset=utf-8"), std::string::npos);
  EXPECT_NE(headers.find("x-content-type-options: nosniff"), std::string::npos);

  // A function's first instruction, an address outside everything, and the
  // first again in decimal.
  const uintptr_t pc = reinterpret_cast<uintptr_t>(&SymbolTestSlowSection);
  const std::string query = Hex(pc) + "+0x10+" + std::to_string(pc);
  const std::string line = Hex(pc) + " (anonymous namespace)::SymbolTestSlowSection\n";
  const std::string expected = "num_symbols: 1\n" + line + line;
  EXPECT_EQ(HttpGet(port_, "/debug/pprof/symbol?" + query, &status), expected);
  // pprof POSTs the list.
  const std::string posted = RunCommand("curl -s -X POST --data-binary '" + query + "' '" +
                                        Url("/debug/pprof/symbol") + "'");
  EXPECT_EQ(posted, expected);
  // The frame that a full table's samples are charged to has a fake address
  // that the text profiles write; it is named too.
  EXPECT_EQ(HttpGet(port_, "/debug/pprof/symbol?0x1+0x2", &status),
            "num_symbols: 1\n0x1 lockprof.LostSamplesStackTableFull\n"
            "0x2 lockprof.LostSamplesStackTableFull\n");
}

// go tool pprof reads the legacy text profile, which has addresses only, and
// names them through /debug/pprof/symbol.
TEST_F(SymbolEndpointTest, GoPprofNamesATextProfileThroughIt) {
  lockprof::Mutex mu{"symbol.test"};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) SymbolTestSlowSection(mu);
    });
  }
  for (auto& t : threads) t.join();
  int status = 0;
  const std::string url = Url("/debug/pprof/mutex?debug=1");
  const std::string unnamed = GoPprof("-top -symbolize=none '" + url + "'", &status);
  ASSERT_EQ(status, 0) << unnamed;
  EXPECT_EQ(unnamed.find("SymbolTestSlowSection"), std::string::npos) << unnamed;
  const std::string named = GoPprof("-top -symbolize=remote '" + url + "'", &status);
  ASSERT_EQ(status, 0) << named;
  EXPECT_NE(named.find("SymbolTestSlowSection"), std::string::npos) << named;
}

// Every profile's legacy text is one go tool pprof reads (it knows the
// "--- mutex:" and "--- contention:" headers, no others).
TEST_F(SymbolEndpointTest, GoPprofReadsEveryProfilesText) {
  for (const char* name : {"mutex", "block", "hold", "cas"}) {
    int status = 0;
    const std::string url = Url(std::string("/debug/pprof/") + name + "?debug=1");
    const std::string out = GoPprof("-raw -symbolize=none '" + url + "'", &status);
    EXPECT_EQ(status, 0) << name << ": " << out;
  }
}

// `n` distinct addresses spread evenly over this process's code mappings
// (the program's and its libraries').
std::vector<uintptr_t> CodeAddresses(size_t n) {
  std::vector<std::pair<uintptr_t, uintptr_t>> code;
  size_t total = 0;
  std::istringstream maps(lockprof::testing::ReadFile("/proc/self/maps"));
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long long start = 0, end = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%llx-%llx %7s", &start, &end, perms) == 3 &&
        std::string(perms) == "r-xp" && line.find('/') != std::string::npos) {
      code.emplace_back(uintptr_t(start), uintptr_t(end));
      total += size_t(end - start);
    }
  }
  std::vector<uintptr_t> out;
  if (total < n) return out;
  const size_t step = total / n;
  size_t offset = 0;  // Into the concatenated mappings.
  for (const auto& [start, end] : code) {
    for (; offset < end - start && out.size() < n; offset += step) out.push_back(start + offset);
    offset -= end - start;
  }
  return out;
}

// A client asking for a million distinct code addresses (most of them named)
// leaves the symbolizer's cache as it was: without that, each named one
// would stay cached for the life of the process.
TEST_F(SymbolEndpointTest, ClientAddressesLeaveTheSymbolCacheAsItWas) {
  constexpr size_t kAddresses = 1000000, kChunk = 31250;  // 32 POSTs of 0.5 MiB.
  const std::vector<uintptr_t> addresses = CodeAddresses(kAddresses);
  ASSERT_EQ(addresses.size(), kAddresses);
  auto& symbolizer = lockprof::agent::Symbolizer::Global();
  const size_t cached = symbolizer.cache_size();
  size_t named = 0;
  for (size_t first = 0; first < kAddresses; first += kChunk) {
    std::string body;
    for (size_t i = first; i < first + kChunk; ++i) body += Hex(addresses[i]) + "+";
    const std::string file = lockprof::testing::WriteTempFile(body);
    const std::string answer =
        RunCommand("curl -s -H 'Content-Type: application/octet-stream' --data-binary @" + file +
                   " '" + Url("/debug/pprof/symbol") + "'");
    std::remove(file.c_str());
    ASSERT_EQ(answer.rfind("num_symbols: 1\n", 0), 0u) << answer.substr(0, 200);
    named += size_t(std::count(answer.begin(), answer.end(), '\n')) - 1;
  }
  std::printf("%zu addresses asked, %zu named; cache: %zu entries before, %zu after\n", kAddresses,
              named, cached, symbolizer.cache_size());
  EXPECT_GT(named, kAddresses / 10);
  EXPECT_EQ(symbolizer.cache_size(), cached);
}

// A function whose name (over 300 characters) makes each line of an answer
// long.
ABSL_ATTRIBUTE_NOINLINE int
SymbolTestAFunctionWhoseNameIsLongEnoughToMakeEveryLineOfTheSymbolAnswerLongAFunctionWhoseNameIsLongEnoughToMakeEveryLineOfTheSymbolAnswerLongAFunctionWhoseNameIsLongEnoughToMakeEveryLineOfTheSymbolAnswerLongAFunctionWhoseNameIsLongEnoughToMakeEveryLineOfTheSymbolAnswerLongAFunctionWhoseNameIsLong(
    int x) {
  asm volatile("");
  return x + 1;
}

// A body that repeats one address of a long-named function (1 MiB: about
// 70,000 lines of 330 bytes) would be answered with 23 MB: refused with
// 413 instead, and a request for that address once is still answered.
TEST_F(SymbolEndpointTest, AnAnswerOverItsCapIsRefused) {
  const std::string address = Hex(reinterpret_cast<uintptr_t>(
      &SymbolTestAFunctionWhoseNameIsLongEnoughToMakeEveryLineOfTheSymbolAnswerLongAFunctionWhoseNameIsLongEnoughToMakeEveryLineOfTheSymbolAnswerLongAFunctionWhoseNameIsLongEnoughToMakeEveryLineOfTheSymbolAnswerLongAFunctionWhoseNameIsLongEnoughToMakeEveryLineOfTheSymbolAnswerLongAFunctionWhoseNameIsLong));
  std::string body;
  while (body.size() + address.size() + 1 < (1u << 20)) body += address + "+";
  const std::string file = lockprof::testing::WriteTempFile(body);
  const std::string answer = RunCommand(
      "curl -s -w '\\n%{http_code}' -H 'Content-Type: application/octet-stream' --data-binary @" +
      file + " '" + Url("/debug/pprof/symbol") + "'");
  std::remove(file.c_str());
  EXPECT_EQ(answer.substr(answer.size() - 3), "413") << answer.substr(0, 300);
  EXPECT_LT(answer.size(), size_t{4096});
  int status = 0;
  const std::string one = HttpGet(port_, "/debug/pprof/symbol?" + address, &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(one.find("SymbolTestAFunctionWhoseNameIsLong"), std::string::npos) << one;
}

// A lookup of many addresses (50-100 us each uncached) gives up once its
// client has gone, as a ?seconds= window does: it kept the server's stop,
// the exit and a symbol slot waiting for seconds.
TEST(SymbolCancelTest, ALongLookupEndsWhenTheClientGoes) {
  lockprof::AdminRequest req;
  req.method = "POST";
  req.path = "/debug/pprof/symbol";
  const uintptr_t base = reinterpret_cast<uintptr_t>(&SymbolTestSlowSection);
  for (uintptr_t i = 0; i < 20000; ++i) req.body += Hex(base + 4 * i) + "+";
  std::atomic<int> polls{0};
  req.cancelled = [&polls] {
    ++polls;
    return true;
  };
  const auto start = std::chrono::steady_clock::now();
  const lockprof::AdminResponse r = lockprof::HandleAdminRequest(req);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.status, 500) << r.body.substr(0, 200);
  EXPECT_EQ(r.body.substr(0, 200), "context canceled\n");
  EXPECT_EQ(polls.load(), 1);
  EXPECT_LT(seconds, 0.5);
}

// At most kMaxSymbolAnswers requests are answered at once; the one over
// the limit is told to come back, and the count goes down as each ends.
TEST(SymbolInFlightTest, AdmitsUpToTheLimitAndReleasesOnEnd) {
  std::atomic<int> count{0};
  {
    const lockprof::server::InFlight a(count, 2), b(count, 2);
    EXPECT_TRUE(a.admitted());
    EXPECT_TRUE(b.admitted());
    const lockprof::server::InFlight c(count, 2);
    EXPECT_FALSE(c.admitted());
    EXPECT_EQ(count.load(), 2);
  }
  EXPECT_EQ(count.load(), 0);
  // Without a limit (a host's own server): admitted and not counted, so it
  // takes no room from a limited one.
  const lockprof::server::InFlight unlimited(count, 0);
  EXPECT_TRUE(unlimited.admitted());
  EXPECT_EQ(count.load(), 0);
}

TEST_F(SymbolEndpointTest, CmdlineIsTheArgumentsNulSeparated) {
  std::string expected = lockprof::testing::ReadFile("/proc/self/cmdline");
  expected.pop_back();  // Go joins with NUL; the kernel ends each with one.
  int status = 0;
  std::string headers;
  EXPECT_EQ(HttpGet(port_, "/debug/pprof/cmdline", &status, &headers), expected);
  EXPECT_EQ(status, 200);
  EXPECT_NE(headers.find("content-type: text/plain; charset=utf-8"), std::string::npos);
}

TEST_F(SymbolEndpointTest, IndexLinksCmdlineAndSymbol) {
  int status = 0;
  const std::string index = HttpGet(port_, "/debug/pprof/", &status);
  EXPECT_EQ(status, 200);
  EXPECT_NE(index.find("href='cmdline?debug=1'"), std::string::npos) << index;
  EXPECT_NE(index.find("href='symbol?debug=1'"), std::string::npos) << index;
  EXPECT_NE(index.find("href='hold?debug=1'"), std::string::npos) << index;
}

}  // namespace
