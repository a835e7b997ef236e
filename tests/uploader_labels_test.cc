// Sample labels Pyroscope would refuse (a name with a dot or a leading
// digit, a value over 2048 bytes, more than 30 label names in a series):
// the uploader fits them, the strict receiver (which validates them as
// Pyroscope does) accepts the upload, and /metrics counts each change. The
// admin endpoint's profile keeps them as recorded.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "lockprof/agent/base/utf8.h"
#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/agent/pyroscope/pyroscope_labels.h"
#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "test_util.h"

namespace {

namespace py = lockprof::agent::pyroscope;
using lockprof::agent::LabelChange;
using lockprof::agent::ProfileId;
using lockprof::agent::UploadResult;
using lockprof::testing::ParseProfile;
using lockprof::testing::Receiver;
using Labels = std::vector<std::pair<std::string, std::string>>;

// "x" and 1500 two-byte characters: 3001 bytes, cut to 2047 (2048 would
// split a character).
const std::string kLongValue = [] {
  std::string s = "x";
  for (int i = 0; i < 1500; ++i) s += "\xc3\xa9";
  return s;
}();

TEST(UploaderLabelsTest, FitsNamesValuesAndCount) {
  Labels labels = {{"http.route", "/cart"}, {"9lives", "a"},     {"", "no name"},
                   {"http_route", "again"}, {"big", kLongValue}, {"lock", "mu"}};
  py::LabelFixes fixes;
  py::FitSampleLabels({}, &labels, &fixes);
  const Labels want = {{"lock", "mu"},
                       {"http_route", "/cart"},
                       {"_9lives", "a"},
                       {"big", kLongValue.substr(0, 2047)}};
  EXPECT_EQ(labels, want);
  EXPECT_EQ(fixes.renamed, 2u);    // http.route, 9lives.
  EXPECT_EQ(fixes.truncated, 1u);  // big.
  EXPECT_EQ(fixes.dropped, 2u);    // The empty name; http_route once renamed.
  // 3 series labels of the app's and the 4 of the server's: 23 are left.
  labels.clear();
  for (int i = 0; i < 40; ++i) labels.emplace_back("l" + std::to_string(i), "v");
  labels.emplace_back("lock", "mu");
  fixes = {};
  py::FitSampleLabels({"env", "region", "l5"}, &labels, &fixes);
  ASSERT_EQ(labels.size(), 23u);
  EXPECT_EQ(labels[0].first, "lock");
  EXPECT_EQ(fixes.dropped, 18u);  // l5, the app's own, and 17 past the limit.
  EXPECT_EQ(
      std::count_if(labels.begin(), labels.end(), [](const auto& l) { return l.first == "l5"; }),
      0);
}

// A value that is not UTF-8 (a Latin-1 name) is made valid before it is
// cut: the encoder writes each bad byte as U+FFFD, three bytes, so a value
// fitted in raw bytes went out up to three times Pyroscope's limit, and the
// whole upload was refused.
TEST(UploaderLabelsTest, AValueThatIsNotUtf8FitsOnceMadeValid) {
  Labels labels = {{"latin1", std::string(700, '\xe9')}, {"long", std::string(5000, '\xe9')}};
  py::LabelFixes fixes;
  py::FitSampleLabels({}, &labels, &fixes);
  ASSERT_EQ(labels.size(), 2u);
  for (const auto& [name, value] : labels) {
    EXPECT_TRUE(lockprof::agent::IsValidUtf8(value)) << name;
    EXPECT_LE(value.size(), py::kMaxLabelValueBytes) << name;
  }
  // 700 bad bytes are 2100 valid ones: 682 characters kept.
  EXPECT_EQ(labels[0].second, lockprof::agent::ValidUtf8(std::string(682, '\xe9')));
  EXPECT_EQ(fixes.truncated, 2u);
}

// Pyroscope keeps a series label's value over a sample label of the same
// name and says nothing: such a label is dropped here, and counted.
TEST(UploaderLabelsTest, ASampleLabelTheSeriesHasIsDropped) {
  Labels labels = {{"service_name", "other"},
                   {"env", "dev"},
                   {"__name__", "x"},
                   {"lock", "mu"},
                   {"route", "/a"}};
  py::LabelFixes fixes;
  py::FitSampleLabels({"env"}, &labels, &fixes);
  const Labels want = {{"lock", "mu"}, {"route", "/a"}};
  EXPECT_EQ(labels, want);
  EXPECT_EQ(fixes.dropped, 3u);
  EXPECT_EQ(fixes.renamed, 0u);
}

std::vector<std::string> g_many_names;

// Holds `mu` under `depth` nested scopes, one label each.
void HoldUnderNestedLabels(lockprof::Mutex& mu, size_t depth) {
  if (depth == 0) {
    for (int i = 0; i < 20; ++i) {
      std::lock_guard<lockprof::Mutex> l(mu);
    }
    return;
  }
  lockprof::ScopedLabels scope({{g_many_names[depth - 1], "v"}});
  HoldUnderNestedLabels(mu, depth - 1);
}

uint64_t Changes(LabelChange c) { return lockprof::agent::UploadLabelChanges(c); }

TEST(UploaderLabelsTest, PyroscopeAcceptsTheHoldProfileOfOddLabels) {
  lockprof::testing::ScopedRates rates(lockprof::testing::ScopedRates::kKeep,
                                       lockprof::testing::ScopedRates::kKeep, 1);
  for (int i = 0; i < 40; ++i) g_many_names.push_back("n" + std::to_string(i));
  Receiver receiver;
  lockprof::UploaderOptions o;
  o.url = receiver.url();
  o.app_name = "labels-test";
  o.labels = {{"env", "test"}};
  o.profiles = {"hold"};
  o.interval = std::chrono::hours(1);
  o.max_attempts = 1;
  const uint64_t renamed = Changes(LabelChange::kRenamed),
                 truncated = Changes(LabelChange::kTruncated),
                 dropped = Changes(LabelChange::kDropped);
  const uint64_t failures = lockprof::agent::Uploads(ProfileId::kHold, UploadResult::kFailure);
  ASSERT_TRUE(lockprof::StartUploader(o).ok());
  static lockprof::Mutex odd_mu{"labels.odd"}, many_mu{"labels.many"};
  std::thread worker([] {  // A fresh thread: it samples at the new rate.
    {
      lockprof::ScopedLabels labels({{"http.route", "/cart"}, {"big", kLongValue}});
      HoldUnderNestedLabels(odd_mu, 0);
    }
    HoldUnderNestedLabels(many_mu, 40);
  });
  worker.join();
  lockprof::StopUploader();
  EXPECT_EQ(lockprof::agent::Uploads(ProfileId::kHold, UploadResult::kFailure), failures)
      << "refused: " << (receiver.Requests().empty() ? "" : receiver.Requests().back().message);
  const auto uploads = receiver.Uploads("hold_duration");
  ASSERT_EQ(uploads.size(), 1u);
  const auto p = ParseProfile(Receiver::ReadFile(uploads[0].profile_path));
  bool odd = false, many = false;
  for (const auto& s : p.sample()) {
    const std::string lock = lockprof::testing::LabelValue(p, s, "lock");
    if (lock == "labels.odd") {
      odd = true;
      EXPECT_EQ(lockprof::testing::LabelValue(p, s, "http_route"), "/cart");
      EXPECT_EQ(lockprof::testing::LabelValue(p, s, "big"), kLongValue.substr(0, 2047));
    } else if (lock == "labels.many") {
      many = true;
      // 30 names: 4 of the server's, env, and 25 of the sample's.
      int str_labels = 0;
      for (const auto& l : s.label()) str_labels += l.str() != 0;
      EXPECT_EQ(str_labels, 25);
    }
  }
  EXPECT_TRUE(odd && many);
  EXPECT_GE(Changes(LabelChange::kRenamed) - renamed, 1u);
  EXPECT_GE(Changes(LabelChange::kTruncated) - truncated, 1u);
  EXPECT_GE(Changes(LabelChange::kDropped) - dropped, 16u);
  // /metrics shows them.
  std::string metrics;
  lockprof::WriteMetrics(&metrics);
  EXPECT_GE(lockprof::testing::MetricValue(
                metrics, "lockprof_upload_labels_changed_total{change=\"dropped\"}"),
            16);
  // The admin endpoint's profile keeps the labels as recorded.
  bool recorded = false;
  const auto local = lockprof::testing::FetchProfile("hold");
  for (const auto& s : local.sample()) {
    recorded |= lockprof::testing::LabelValue(local, s, "http.route") == "/cart";
  }
  EXPECT_TRUE(recorded);
}

}  // namespace
