// Names are bytes from the program (lock names, thread names, label keys and
// values), and the formats they reach want UTF-8 and their own escaping:
// every JSON answer parses with a strict parser, every profile with
// protobuf's, /metrics lists each series once, and a name cut to fit a
// fixed buffer is cut between characters.
#include <pthread.h>

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/labels.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/primitives/mutex.h"
#include "route_get.h"
#include "test_util.h"

namespace lockprof {
namespace {

using testing::ScopedRates;

// A quote, a backslash, a control byte, two bytes that start no UTF-8
// sequence, and U+2028 (valid, but a line break to JavaScript).
constexpr char kHostile[] = "ev\"il\\\x01\xff\xfe\xe2\x80\xa8 end";
constexpr char kOther[] = "other\xc3(";
// 46 bytes, then a two-byte character across the 47 bytes profiles and
// metrics keep of a name.
constexpr char kAcrossTheCut[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9";

std::string Get(const std::string& path, const std::string& query = "") {
  return testing::RouteGet(path, query);
}

// Python's json module, reading the body as UTF-8 with errors="strict".
::testing::AssertionResult StrictJson(const std::string& body) {
  const std::string path = testing::WriteTempFile(body, ".json");
  int status = -1;
  const std::string out = testing::RunCommand(
      "python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding=\"utf-8\", "
      "errors=\"strict\"))' " +
          path + " 2>&1",
      &status);
  if (status == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << out;
}

// Sleeps in `mu` (held by the caller) on a thread with a hostile name and
// hostile labels, until `release` is called.
class HostileWaiter {
 public:
  explicit HostileWaiter(Mutex* mu) : mu_(mu) {
    threads_ = testing::StartBlocked(1, [this] {
      pthread_setname_np(pthread_self(), "w\xff\x01\"x");
      ScopedLabels labels({{"k\xff\"", "v\x80\n\\"}});
      mu_->lock();
      mu_->unlock();
    });
  }
  void Join() {
    for (std::thread& t : threads_) t.join();
  }

 private:
  Mutex* mu_;
  std::vector<std::thread> threads_;
};

TEST(HostileNamesTest, EveryJsonAnswerAndProfileStaysValid) {
  ScopedRates rates(1, 1, 1);
  SetHeldLockTracking(true);
  SetLockOrderChecking(LockOrderMode::kReport);
  Mutex mu(kHostile);
  Mutex other(kOther);
  mu.lock();
  HostileWaiter waiter(&mu);
  EXPECT_TRUE(StrictJson(Get("/debug/lockprof/held", "format=json")));
  // In text the thread's name is escaped as lock names are: its control
  // byte cannot rewrite the line on a terminal, nor its byte that is not
  // UTF-8 start a C1 control with the text after it.
  const std::string text = Get("/debug/lockprof/held");
  EXPECT_NE(text.find("(w\\xff\\x01\\\"x)"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x01'), std::string::npos) << text;
  mu.unlock();
  waiter.Join();
  // An inversion between the two names, taken at different times.
  std::thread([&] {
    MutexLock a(&mu);
    MutexLock b(&other);
  }).join();
  std::thread([&] {
    MutexLock b(&other);
    MutexLock a(&mu);
  }).join();
  SetLockOrderChecking(LockOrderMode::kOff);
  SetHeldLockTracking(false);
  ASSERT_EQ(LockOrderInversions(), 1u);
  EXPECT_TRUE(StrictJson(Get("/debug/lockprof/lock-order", "format=json")));
  for (const char* name : {"mutex", "block", "hold"}) {
    EXPECT_TRUE(StrictJson(Get("/debug/lockprof/profile.json", std::string("name=") + name)))
        << name;
    // Protobuf's parser rejects a string field that is not UTF-8.
    const perftools::profiles::Profile p = testing::FetchProfile(name);
    bool named = false;
    for (const std::string& s : p.string_table()) {
      named |= s.find("ev\"il\\") == 0;
      EXPECT_TRUE(agent::IsValidUtf8(s)) << name;
    }
    EXPECT_TRUE(named) << name;
  }
}

// Two names that differ only in bytes that are not UTF-8 are one label
// value: one series, not two with the same labels.
TEST(HostileNamesTest, MetricsListEachSeriesOnce) {
  static constexpr char kFe[] = "dup\xfe";
  static constexpr char kFf[] = "dup\xff";
  Mutex a(kFe), b(kFf);
  for (Mutex* mu : {&a, &b}) {
    mu->lock();
    HostileWaiter waiter(mu);
    mu->unlock();
    waiter.Join();
  }
  const std::string metrics = Get("/metrics");
  EXPECT_EQ(testing::CountOf(metrics, "lockprof_lock_contentions_total{lock=\"dup\xEF\xBF\xBD\""),
            1u)
      << metrics;
}

TEST(HostileNamesTest, NamesAreCutBetweenCharacters) {
  ScopedRates rates(1, 1, 1);
  Mutex mu(kAcrossTheCut);
  mu.lock();
  HostileWaiter waiter(&mu);
  mu.unlock();
  waiter.Join();
  const std::string kept(46, 'a');
  const perftools::profiles::Profile p = testing::FetchProfile("block");
  EXPECT_FALSE(testing::SamplesForLock(p, kept).empty());
  const std::string metrics = Get("/metrics");
  EXPECT_NE(metrics.find("lockprof_lock_contentions_total{lock=\"" + kept + "\""),
            std::string::npos)
      << metrics;
}

// A user label named as one of lockprof's own is renamed, so that the
// sample's `lock` label stays the lock's (the contention page showed the
// user's), and as Prometheus does, "exported_" is prepended until the key is
// free: a user's own `exported_lock` keeps its name and value (one key with
// two values would be ambiguous in its turn).
TEST(HostileNamesTest, AUserLabelNamedLockIsExported) {
  ScopedRates rates(1, 1, 1);
  Mutex mu("labelled.lock");
  mu.lock();
  std::vector<std::thread> waiter = testing::StartBlocked(1, [&] {
    ScopedLabels labels({{"lock", "dup"}, {"mode", "m"}, {"exported_lock", "mine"}});
    mu.lock();
    mu.unlock();
  });
  mu.unlock();
  waiter[0].join();
  const perftools::profiles::Profile p = testing::FetchProfile("block");
  const std::vector<const perftools::profiles::Sample*> samples =
      testing::SamplesForLock(p, "labelled.lock");
  ASSERT_FALSE(samples.empty());
  for (const perftools::profiles::Sample* s : samples) {
    std::map<std::string, int> keys;
    for (const auto& l : s->label()) ++keys[p.string_table(l.key())];
    for (const auto& [key, n] : keys) EXPECT_EQ(n, 1) << key;
    EXPECT_EQ(testing::LabelValue(p, *s, "exported_lock"), "mine");
    EXPECT_EQ(testing::LabelValue(p, *s, "exported_exported_lock"), "dup");
    EXPECT_EQ(testing::LabelValue(p, *s, "exported_mode"), "m");
  }
  // profile.json: each key once in the sample's "l".
  const std::string json = Get("/debug/lockprof/profile.json", "name=block");
  EXPECT_EQ(json.find("\"lock\":\"dup\""), std::string::npos);
  const size_t at = json.find("\"lock\":\"labelled.lock\"");
  ASSERT_NE(at, std::string::npos) << json;
  const size_t from = json.rfind("\"l\":{", at);
  const std::string l = json.substr(from, json.find('}', at) + 1 - from);
  EXPECT_NE(l.find("\"exported_lock\":\"mine\""), std::string::npos) << l;
  EXPECT_NE(l.find("\"exported_exported_lock\":\"dup\""), std::string::npos) << l;
  EXPECT_EQ(l.find("\"exported_lock\":\"dup\""), std::string::npos) << l;
}

// Takes `named`, then `plain`, on one thread, and the other order on
// another (a lock-order inversion), running `while_held` there with both
// held; returns what that second thread wrote to stderr.
std::string InvertOrderWith(
    Mutex* named, Mutex* plain, const std::function<void()>& while_held = [] {}) {
  SetLockOrderChecking(LockOrderMode::kReport);
  std::thread([&] {
    MutexLock a(named);
    MutexLock b(plain);
  }).join();
  ::testing::internal::CaptureStderr();
  std::thread([&] {
    MutexLock b(plain);
    MutexLock a(named);
    while_held();
  }).join();
  std::string err = ::testing::internal::GetCapturedStderr();
  SetLockOrderChecking(LockOrderMode::kOff);
  return err;
}

// A name cannot forge lines of the stderr report or of the text pages.
TEST(HostileNamesTest, ANameWithALineBreakStaysOnItsLine) {
  static constexpr char kForger[] = "x\"\nlockprof: forged";
  Mutex forger(kForger), plain("plain");
  const std::string err = InvertOrderWith(&forger, &plain);
  EXPECT_EQ(testing::CountOf(err, "\n"), 1u) << err;
  EXPECT_NE(err.find("\"x\\\"\\x0alockprof: forged\""), std::string::npos) << err;
  EXPECT_EQ(LockOrderReport().find("\nlockprof: forged"), std::string::npos);
}

// Nor drive the terminal of whoever reads them: a C1 control (U+009B
// starts an escape sequence, as ESC [ does) and a byte that is not UTF-8
// are escaped like the C0 controls, in the stderr report and the text
// pages, lock names and thread names alike.
TEST(HostileNamesTest, ATerminalControlInANameIsEscaped) {
  static constexpr char kCsi[] =
      "csi\xc2\x9b"
      "2J\xff";
  Mutex csi(kCsi), plain("plain");
  std::string held;
  const std::string err = InvertOrderWith(&csi, &plain, [&] {
    pthread_setname_np(pthread_self(),
                       "w\xc2\x9b"
                       "31m");
    held = Get("/debug/lockprof/held");
  });
  for (const std::string& text : {err, held, LockOrderReport()}) {
    EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos) << text;
    EXPECT_EQ(text.find("\xff"), std::string::npos) << text;
  }
  EXPECT_NE(err.find("\"csi\\xc2\\x9b2J\\xff\""), std::string::npos) << err;
  EXPECT_NE(held.find("w\\xc2\\x9b31m"), std::string::npos) << held;
}

// A thread's name may hold a newline (pthread_setname_np takes any byte):
// the held page shows all of it, escaped, so that two threads whose names
// differ after it are told apart.
TEST(HostileNamesTest, AThreadNameWithALineBreakIsShownWhole) {
  Mutex a("a"), b("b");
  std::string held, json;
  InvertOrderWith(&a, &b, [&] {
    pthread_setname_np(pthread_self(), "t\n42");
    held = Get("/debug/lockprof/held");
    json = Get("/debug/lockprof/held", "format=json");
  });
  EXPECT_NE(held.find("(t\\x0a42)"), std::string::npos) << held;
  EXPECT_NE(json.find("\"t\\u000a42\""), std::string::npos) << json;
}

}  // namespace
}  // namespace lockprof
