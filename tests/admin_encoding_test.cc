// Request headers cpp-httplib acts on by itself, before any handler of
// lockprof's runs: a compressed request body (Content-Encoding), byte ranges
// of the answer (Range) and a compressed answer (Accept-Encoding). Go's
// net/http/pprof does none of these, and each cost the host memory or CPU
// that no limit of the server's bounded: a body was inflated whole whatever
// its size, each range of an answer was a copy of it, and answers were
// compressed with Brotli's slowest setting.
#include <gtest/gtest.h>

#include <string>

#include "admin_test_client.h"
#include "test_util.h"

namespace {

using lockprof::admin_test::Curl;
using lockprof::admin_test::Options;
using lockprof::admin_test::Server;
using lockprof::testing::ResetPeakMemory;
using lockprof::testing::RunCommand;
using lockprof::testing::StatusKiB;

TEST(AdminEncodingTest, ACompressedBodyIsNeverInflated) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  // 200 MB of zeros, gzipped: about 200 KB, well within the body limit.
  const std::string bomb = lockprof::testing::WriteTempFile("");
  int rc = -1;
  RunCommand("head -c 200000000 /dev/zero | gzip -9 > " + bomb, &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_TRUE(ResetPeakMemory());
  const long before = StatusKiB("VmHWM");
  const int status = Curl("--data-binary @" + bomb +
                          " -H 'Content-Encoding: gzip' -H 'Content-Type: text/plain' '" +
                          s.url("/debug/pprof/symbol") + "'");
  const long grew_mib = (StatusKiB("VmHWM") - before) / 1024;
  std::remove(bomb.c_str());
  EXPECT_GT(status, 0);
  EXPECT_LT(grew_mib, 64) << "the body was inflated (HTTP " << status << ")";
}

TEST(AdminEncodingTest, RangesAreIgnoredAsGoIgnoresThem) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const std::string url = "'" + s.url("/debug/lockprof/") + "'";
  std::string whole;
  ASSERT_EQ(Curl(url, &whole), 200);
  ASSERT_GT(whole.size(), 10000u);
  // Each range was a copy of the answer in memory: a header line of
  // "0-," repeated made thousands.
  for (const std::string range : {"bytes=0-,0-,0-,0-", "bytes=0-9"}) {
    std::string body, headers;
    EXPECT_EQ(Curl("-H 'Range: " + range + "' " + url, &body, nullptr, &headers), 200) << range;
    EXPECT_EQ(body.size(), whole.size()) << range;
    EXPECT_EQ(headers.find("Content-Range"), std::string::npos) << headers;
    EXPECT_EQ(headers.find("multipart/byteranges"), std::string::npos) << headers;
  }
}

TEST(AdminEncodingTest, AnswersAreNeverCompressed) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  for (const char* path : {"/metrics", "/debug/lockprof/", "/debug/pprof/mutex?debug=1"}) {
    std::string body, headers;
    EXPECT_EQ(Curl("-H 'Accept-Encoding: br, gzip, deflate' '" + s.url(path) + "'", &body, nullptr,
                   &headers),
              200)
        << path;
    EXPECT_EQ(headers.find("Content-Encoding"), std::string::npos) << path << "\n" << headers;
  }
}

}  // namespace
