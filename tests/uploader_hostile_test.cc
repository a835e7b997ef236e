// The uploader against a server that answers what no Pyroscope would: an
// answer body that never ends, a gzip bomb, control characters meant for the
// log. The application's memory stays bounded, the upload counts as failed,
// and each log line stays one line. And the request itself arrives exactly
// as encoded (labels with spaces and '+').
#include <gtest/gtest.h>
#include <zlib.h>

#include <mutex>
#include <string>
#include <vector>

#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "raw_http_server.h"
#include "test_util.h"
#include "uploader_log.h"

namespace {

using lockprof::agent::ProfileId;
using lockprof::agent::UploadResult;
using lockprof::testing::RawHttpServer;

using lockprof::testing::CaptureLog;
using lockprof::testing::Logged;

// One upload of the mutex profile (the last interval, sent by
// StopUploader), one attempt; returns the failures it counted.
uint64_t UploadOnce(const std::string& url,
                    std::vector<std::pair<std::string, std::string>> labels = {}) {
  { lockprof::testing::UploaderLog::Clear(); }
  lockprof::UploaderOptions o;
  o.url = url;
  o.app_name = "hostile-test";
  o.labels = std::move(labels);
  o.profiles = {"mutex"};
  o.interval = std::chrono::hours(1);
  o.request_timeout = std::chrono::seconds(5);
  o.shutdown_timeout = std::chrono::seconds(20);
  o.max_attempts = 1;
  o.log = CaptureLog;
  const uint64_t before = lockprof::agent::Uploads(ProfileId::kMutex, UploadResult::kFailure);
  EXPECT_TRUE(lockprof::StartUploader(o).ok());
  lockprof::StopUploader();
  return lockprof::agent::Uploads(ProfileId::kMutex, UploadResult::kFailure) - before;
}

// The growth of this process's peak resident set while `upload` runs, in MiB.
long PeakGrowthMiB(const std::function<void()>& upload) {
  EXPECT_TRUE(lockprof::testing::ResetPeakMemory());
  const long before = lockprof::testing::StatusKiB("VmHWM");
  upload();
  return (lockprof::testing::StatusKiB("VmHWM") - before) / 1024;
}

constexpr size_t kMiB = 1 << 20;

// gzip of `size` zero bytes: about a thousandth of that.
std::string GzipOfZeros(size_t size) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
  const std::string zeros(kMiB, '\0');
  std::string out;
  char buf[64 * 1024];
  for (size_t done = 0; done < size; done += kMiB) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
    z.avail_in = uInt(zeros.size());
    const int flush = done + kMiB >= size ? Z_FINISH : Z_NO_FLUSH;
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      deflate(&z, flush);
      out.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  return out;
}

// 256 MiB once inflated (2.3 MB of gzip took a host to 502 MB): the answer
// is not inflated, and its 260 KB are more than an answer may be.
TEST(UploaderHostileTest, AGzipBombAnswerIsNotInflated) {
  const std::string bomb = GzipOfZeros(256 * kMiB);
  RawHttpServer server([&](RawHttpServer&, int fd) {
    RawHttpServer::Send(fd, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " +
                                std::to_string(bomb.size()) + "\r\nConnection: close\r\n\r\n" +
                                bomb);
  });
  uint64_t failures = 0;
  const long growth = PeakGrowthMiB([&] { failures = UploadOnce(server.url()); });
  EXPECT_LT(growth, 32) << "MiB: the answer was inflated";
  EXPECT_EQ(failures, 1u);
  ASSERT_EQ(Logged().size(), 1u);
  EXPECT_NE(Logged()[0].find("stopped reading"), std::string::npos) << Logged()[0];
}

// A chunked body of 256 MiB (an endless one made a host abort with
// bad_alloc): read no further than an answer may be.
TEST(UploaderHostileTest, AnEndlessAnswerBodyIsCutShort) {
  size_t sent = 0;
  uint64_t failures = 0;
  long growth = 0;
  {
    RawHttpServer server([&](RawHttpServer&, int fd) {
      RawHttpServer::Send(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      const std::string chunk = "100000\r\n" + std::string(kMiB, 'x') + "\r\n";
      for (int i = 0; i < 256 && RawHttpServer::Send(fd, chunk); ++i) sent += kMiB;
      RawHttpServer::Send(fd, "0\r\n\r\n");
    });
    growth = PeakGrowthMiB([&] { failures = UploadOnce(server.url()); });
  }  // Joins the server's thread: its answer has ended and `sent` is final.
  EXPECT_LT(growth, 32) << "MiB: the answer was kept";
  EXPECT_EQ(failures, 1u);
  EXPECT_LT(sent, 256 * kMiB) << "the client read the whole body";
}

// The server's words (its answer's body, a redirect's Location) are quoted
// escaped: a newline would forge a log line, ESC and CSI would drive the
// terminal of whoever reads the log.
TEST(UploaderHostileTest, TheServersWordsStayOnOneLogLine) {
  const std::string body = "bad\nlockprof: forged\x1b[2J\xc2\x9b\xff end";
  RawHttpServer server([&](RawHttpServer&, int fd) {
    RawHttpServer::Send(fd,
                        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://x/\x1b[31mred\r\n"
                        "Content-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  });
  EXPECT_EQ(UploadOnce(server.url()), 1u);
  const auto log = Logged();
  ASSERT_EQ(log.size(), 1u);
  for (char c : log[0]) {
    EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << "control byte in: " << log[0];
  }
  EXPECT_EQ(log[0].find("\xc2\x9b"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find(R"("bad\x0alockprof: forged\x1b[2J\xc2\x9b\xff end")"), std::string::npos)
      << log[0];
  EXPECT_NE(log[0].find(R"(redirect to "http://x/\x1b[31mred")"), std::string::npos) << log[0];
}

// A label value arrives exactly as given, with what the query encoding
// leaves as it is, a space (sent as '+') and a '+' (sent as %2B): the path
// is encoded once, not once more on the way out (which made "eu west"
// arrive as "eu+west").
TEST(UploaderHostileTest, LabelValuesArriveExactlyAsGiven) {
  lockprof::testing::Receiver receiver;
  const std::string value = "eu west+1 AZaz09-_.~ %41/:@!*()";
  EXPECT_EQ(UploadOnce(receiver.url(), {{"region", value}}), 0u)
      << ::testing::PrintToString(Logged());
  const auto uploads = receiver.Uploads("mutex");
  ASSERT_EQ(uploads.size(), 1u);
  EXPECT_EQ(uploads[0].meta.at("labels"), "region=" + value);
}

}  // namespace
