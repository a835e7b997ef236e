// The built-in admin server and requests whose framing cannot be trusted,
// sent over raw sockets: a request httplib cannot parse, and one whose
// length is ambiguous, are answered once with an explanation and the
// connection closed, so that nothing the client sent after them is served
// as a request of its own (request smuggling behind a proxy). Also the
// methods and bodies no handler takes, and queries parsed as
// HandleAdminRequest parses them.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <utility>

#include "admin_test_client.h"

namespace {

using lockprof::admin_test::Connect;
using lockprof::admin_test::Curl;
using lockprof::admin_test::Options;
using lockprof::admin_test::ReadUntilClosed;
using lockprof::admin_test::Server;
using lockprof::admin_test::StatusOf;

// What the server answers to `raw` on a fresh connection, until it closes.
std::string Exchange(int port, const std::string& raw) {
  const int fd = Connect(port);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(send(fd, raw.data(), raw.size(), MSG_NOSIGNAL), ssize_t(raw.size()));
  const std::string response = ReadUntilClosed(fd);
  close(fd);
  return response;
}

// The number of responses in `s`.
int Responses(const std::string& s) {
  int n = 0;
  for (size_t at = s.find("HTTP/1.1 "); at != std::string::npos; at = s.find("HTTP/1.1 ", at + 1)) {
    ++n;
  }
  return n;
}

// After each bad request, a second one that must never be answered.
constexpr char kSmuggled[] = "GET /debug/pprof/cmdline HTTP/1.1\r\nHost: x\r\n\r\n";

TEST(AdminFramingTest, AnUnparsableRequestIsAnsweredOnceAndTheConnectionClosed) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const std::string long_header =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n" +
      kSmuggled;
  const std::string long_target =
      "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n" + kSmuggled;
  const std::string bad_version = std::string("GET /x HTTP/9.9\r\nHost: x\r\n\r\n") + kSmuggled;
  const std::string bad_method = std::string("BREW /x HTTP/1.1\r\nHost: x\r\n\r\n") + kSmuggled;
  for (const std::string& raw : {long_header, bad_version, bad_method}) {
    const std::string r = Exchange(s.port(), raw);
    EXPECT_EQ(StatusOf(r), 400) << r.substr(0, 300);
    EXPECT_EQ(Responses(r), 1) << r.substr(0, 600);
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << r.substr(0, 300);
    EXPECT_NE(r.find("Bad Request: "), std::string::npos) << r.substr(0, 300);
  }
  const std::string r = Exchange(s.port(), long_target);
  EXPECT_EQ(StatusOf(r), 414) << r.substr(0, 300);
  EXPECT_EQ(Responses(r), 1) << r.substr(0, 600);
  EXPECT_NE(r.find("URI Too Long"), std::string::npos) << r.substr(0, 300);
}

TEST(AdminFramingTest, AnAmbiguousLengthIsRefusedAndTheConnectionClosed) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const std::string head = "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\n";
  for (const std::string& raw :
       {head + "Content-Length: 3\r\nContent-Length: 100\r\n\r\nabc" + kSmuggled,
        head + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + kSmuggled}) {
    const std::string r = Exchange(s.port(), raw);
    EXPECT_EQ(StatusOf(r), 400) << r.substr(0, 300);
    EXPECT_EQ(Responses(r), 1) << r.substr(0, 600);
    EXPECT_NE(r.find("ambiguous length"), std::string::npos) << r.substr(0, 300);
  }
  // Two equal lengths are one length.
  const std::string same =
      head + "Content-Length: 1\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0";
  EXPECT_EQ(StatusOf(Exchange(s.port(), same)), 200);
}

// A length that reads as no size is a bad request (Go's 400), one over the
// limit too large (413); both say so, and close the connection.
TEST(AdminFramingTest, AnUnreadableLengthIs400AndAnOversizedOne413WithAReason) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const std::string head = "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nContent-Length: ";
  // Refused before the body: httplib skipped the bytes announced first,
  // until the read timeout (5 s) for these.
  const auto start = std::chrono::steady_clock::now();
  for (const char* length : {"-1", "99999999999999999999999"}) {
    const std::string r = Exchange(s.port(), head + length + "\r\n\r\n0x1" + kSmuggled);
    EXPECT_EQ(StatusOf(r), 400) << length << ": " << r.substr(0, 300);
    EXPECT_EQ(Responses(r), 1) << r.substr(0, 600);
    EXPECT_NE(r.find("invalid Content-Length"), std::string::npos) << r.substr(0, 300);
  }
  // Leading zeros are still a length.
  const std::string zeros =
      Exchange(s.port(), head + "00000000000000000003\r\nConnection: close\r\n\r\n0x1" + kSmuggled);
  EXPECT_EQ(StatusOf(zeros), 200) << zeros.substr(0, 300);
  const std::string r = Exchange(s.port(), head + "999999999999\r\n\r\n0x1" + kSmuggled);
  EXPECT_EQ(StatusOf(r), 413) << r.substr(0, 300);
  EXPECT_EQ(Responses(r), 1) << r.substr(0, 600);
  EXPECT_NE(r.find("Payload Too Large"), std::string::npos) << r.substr(0, 300);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(AdminFramingTest, MethodsAndBodiesNoHandlerTakes) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  for (const char* method : {"PUT", "DELETE", "OPTIONS", "PATCH"}) {
    std::string headers;
    EXPECT_EQ(Curl(std::string("-X ") + method + " " + s.url("/debug/pprof/mutex"), nullptr,
                   nullptr, &headers),
              405)
        << method;
    EXPECT_NE(headers.find("Allow: GET, HEAD"), std::string::npos) << method << ": " << headers;
  }
  // A POST without a length has no body (RFC 9112): answered at once, not
  // after the read deadline.
  const std::string r = Exchange(
      s.port(), "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusOf(r), 411) << r.substr(0, 300);
}

// A request answered before its body is read (a method no handler takes,
// or no token) must not leave that body to be read as the next request:
// before, a PUT whose body was a GET of /debug/pprof/cmdline got its 405
// and then the cmdline, one request, two answers.
TEST(AdminFramingTest, ABodyLeftUnreadIsNeverServedAsARequest) {
  for (const bool token : {false, true}) {
    Server s(Options([&](auto& o) {
      if (token) o.token = "secret";
    }));
    ASSERT_TRUE(s.status().ok()) << s.status();
    const std::string body = kSmuggled;
    // httplib reads no body for GET and HEAD either: answered, and the
    // connection closed, before it is read (it was served as a second request).
    const std::pair<std::string, int> cases[] = {
        {"PUT", 405}, {"DELETE", 405}, {"POST", 405}, {"GET", 200}, {"HEAD", 200}};
    for (const auto& [method, answer] : cases) {
      if (method == "POST" && !token) continue;  // Read and routed: no early answer.
      const std::string r =
          Exchange(s.port(), method + " /debug/pprof/ HTTP/1.1\r\n" +
                                 "Host: x\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\n\r\n" + body);
      EXPECT_EQ(StatusOf(r), token ? 401 : answer) << method << " " << r.substr(0, 300);
      EXPECT_EQ(Responses(r), 1) << method << " " << r.substr(0, 600);
    }
    // Without a body, the connection stays open for the next request.
    const std::string r =
        Exchange(s.port(), std::string("DELETE /debug/pprof/mutex HTTP/1.1\r\nHost: x\r\n\r\n") +
                               "GET /debug/pprof/mutex HTTP/1.1\r\nHost: x\r\n" +
                               (token ? "Authorization: Bearer secret\r\n" : "") +
                               "Connection: close\r\n\r\n");
    EXPECT_EQ(Responses(r), 2) << r.substr(0, 600);
  }
}

// A chunked body httplib gives up on (a chunk size that is no number) is
// answered 400, and the connection closed: what followed was served as a
// request of its own.
TEST(AdminFramingTest, ABrokenChunkedBodyEndsTheConnection) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const std::string r =
      Exchange(s.port(), std::string("POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\n") +
                             "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + kSmuggled);
  EXPECT_EQ(StatusOf(r), 400) << r.substr(0, 300);
  EXPECT_EQ(Responses(r), 1) << r.substr(0, 600);
}

// Queries are read as HandleAdminRequest and Go's net/http/pprof read them
// (url.ParseQuery, then strconv.Atoi with its error ignored): a pair with a
// ';' is left out, so "seconds=3;x=1" is no window at all (httplib alone
// took what followed the last '=', and served a 1 s window); a debug= that
// is not a number is 0, the protobuf form.
TEST(AdminFramingTest, QueriesAreParsedAsHandleAdminRequestParsesThem) {
  Server s(Options([](auto&) {}));
  ASSERT_TRUE(s.status().ok()) << s.status();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Curl("'" + s.url("/debug/pprof/mutex?seconds=3;x=1") + "'"), 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
  EXPECT_EQ(Curl("'" + s.url("/debug/pprof/mutex?debug=abc=1") + "'"), 200);
  EXPECT_EQ(Curl("'" + s.url("/debug/pprof/mutex?debug=1") + "'"), 200);
  EXPECT_EQ(Curl("'" + s.url("/debug/pprof/nope?debug=x") + "'"), 404);
}

}  // namespace
