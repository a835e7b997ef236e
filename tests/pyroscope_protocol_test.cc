// The ingest request, piece by piece: checked against Go's own encoders
// (what pyroscope-go calls), against the strict receiver's refusals, and
// the configuration checks that reject what Pyroscope would.
#include "lockprof/agent/pyroscope/pyroscope_protocol.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "lockprof/agent/pyroscope/uploader_config.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "test_util.h"

namespace {

namespace py = lockprof::agent::pyroscope;
using lockprof::agent::ProfileId;
using lockprof::testing::RunCommand;
using lockprof::testing::WriteTempFile;

std::string Error(const absl::Status& s) { return std::string(s.message()); }

TEST(PyroscopeProtocol, ParsesEndpoints) {
  py::Endpoint e;
  ASSERT_TRUE(py::ParseEndpoint("http://pyroscope:4040", &e).ok());
  EXPECT_EQ(e.Origin(), "http://pyroscope:4040");
  EXPECT_EQ(e.IngestPath(), "/ingest");
  ASSERT_TRUE(py::ParseEndpoint("https://profiles.example.com/pyroscope/", &e).ok());
  EXPECT_EQ(e.Origin(), "https://profiles.example.com:443");
  EXPECT_EQ(e.IngestPath(), "/pyroscope/ingest");
  ASSERT_TRUE(py::ParseEndpoint("http://[::1]:4040", &e).ok());
  EXPECT_EQ(e.Origin(), "http://[::1]:4040");

  EXPECT_NE(Error(py::ParseEndpoint("pyroscope:4040", &e)).find("no scheme"), std::string::npos);
  EXPECT_NE(Error(py::ParseEndpoint("ftp://x", &e)).find("http or https"), std::string::npos);
  EXPECT_NE(Error(py::ParseEndpoint("http://", &e)).find("no host"), std::string::npos);
  EXPECT_NE(Error(py::ParseEndpoint("http://u:p@x", &e)).find("basic auth"), std::string::npos);
  EXPECT_NE(Error(py::ParseEndpoint("http://x/?a=1", &e)).find("query"), std::string::npos);
  EXPECT_NE(Error(py::ParseEndpoint("http://x:http", &e)).find("port"), std::string::npos);
  EXPECT_FALSE(py::ParseEndpoint("http://x:0", &e).ok());
  EXPECT_FALSE(py::ParseEndpoint("http://x y:80", &e).ok());
  // The path is sent as written: what a URL path may not hold is refused.
  EXPECT_NE(Error(py::ParseEndpoint("http://x/a b", &e)).find("percent-encoded"),
            std::string::npos);
  ASSERT_TRUE(py::ParseEndpoint("http://x/a%20b/c+d", &e).ok());
  EXPECT_EQ(e.IngestPath(), "/a%20b/c+d/ingest");
  // A '%' that starts no escape would have every upload refused (400).
  for (const char* url : {"http://x/a%zz", "http://x/a%", "http://x/a%4", "http://x/%g0/b"}) {
    EXPECT_NE(Error(py::ParseEndpoint(url, &e)).find("hex digits"), std::string::npos) << url;
  }
}

// A startup error goes to the program's log: it never quotes a password or
// a token, wherever the user put one.
TEST(PyroscopeProtocol, ErrorsNeverQuoteSecrets) {
  py::Endpoint e;
  for (const char* url :
       {"https://alice:s3cr3t@host", "http://alice:s3cr3t@host:4040/p", "http://x/?api_key=s3cr3t",
        "http://x/p#s3cr3t", "ftp://alice:s3cr3t@x", "s3cr3t@x",
        // A password holding what ends a URL's parts, or one slash short.
        "http://alice:s3cr3t#x@host:4040", "http://alice:s3cr3t?x@host",
        "http://alice:s3cr3t/x@host", "http://alice:pa/s3cr3t@host", "https:/alice:s3cr3t@host",
        "http://x/?k=s3cr3t@y"}) {
    const std::string error = Error(py::ParseEndpoint(url, &e));
    EXPECT_FALSE(error.empty()) << url;
    EXPECT_EQ(error.find("s3cr3t"), std::string::npos) << error;
  }
  EXPECT_EQ(py::RedactUrl("https://alice:s3cr3t@host/p?k=v"), "https://***@host/p?***");
  EXPECT_EQ(py::RedactUrl("http://alice:pa/ss@host:4040/p"), "http://***@host:4040/p");
  EXPECT_EQ(py::RedactUrl("http://alice:pa#ss@host:4040/p"), "http://***");
  EXPECT_EQ(py::RedactUrl("https:/alice:s3cr3t@host"), "***@host");
  // A header written as HTTP writes it, its token with or without base64's
  // padding (an '=' makes it look like NAME=VALUE up to there).
  setenv("LOCKPROF_PYROSCOPE_URL", "http://p:4040", 1);
  for (const char* header : {"Authorization: Bearer s3cr3t",
                             "Authorization: Bearer s3cr3t==", "Authorization:Bearer=s3cr3t"}) {
    lockprof::UploaderOptions o;
    setenv("LOCKPROF_PYROSCOPE_HEADERS", header, 1);
    absl::Status s = lockprof::UploaderOptionsFromEnvironment(&o);
    lockprof::agent::UploaderConfig config;
    if (s.ok()) s = lockprof::agent::MakeUploaderConfig(o, &config);
    const std::string error = Error(s);
    EXPECT_NE(error.find("\"Authorization\""), std::string::npos) << error;
    EXPECT_EQ(error.find("s3cr3t"), std::string::npos) << error;
  }
  // A value with a comma: what follows the comma reads as an item of its
  // own, and is the secret's end, not a header's name.
  for (const char* headers : {"X-Api-Key=abc,s3cr3t", "X-Org=1,X-Api-Key=abc,s3cr3t:x"}) {
    lockprof::UploaderOptions o;
    setenv("LOCKPROF_PYROSCOPE_HEADERS", headers, 1);
    const std::string error = Error(lockprof::UploaderOptionsFromEnvironment(&o));
    EXPECT_NE(error.find("LOCKPROF_PYROSCOPE_HEADERS"), std::string::npos) << error;
    EXPECT_EQ(error.find("s3cr3t"), std::string::npos) << error;
  }
  unsetenv("LOCKPROF_PYROSCOPE_HEADERS");
  unsetenv("LOCKPROF_PYROSCOPE_URL");
}

TEST(PyroscopeProtocol, RejectsNamesAndLabelsPyroscopeRejects) {
  EXPECT_TRUE(py::ValidateAppName("checkout/api-v2.1_x").ok());
  EXPECT_NE(Error(py::ValidateAppName("")).find("empty"), std::string::npos);
  EXPECT_NE(Error(py::ValidateAppName("my app")).find("' '"), std::string::npos);

  EXPECT_TRUE(py::ValidateLabels({{"env", "prod"}, {"_zone", "eu west/1=a"}}).ok());
  const std::pair<py::Labels, std::string> bad[] = {
      {{{"env-name", "x"}}, "[a-zA-Z_][a-zA-Z0-9_]*"},
      {{{"1st", "x"}}, "'1'"},
      {{{"a.b", "x"}}, "'.'"},
      {{{"__name__", "x"}}, "reserved"},
      {{{"service_name", "x"}}, "set by Pyroscope"},
      {{{"env", ""}}, "empty value"},
      {{{"env", "a,b"}}, "','"},
      {{{"env", "a}"}}, "'}'"},
      {{{"env", " a"}}, "space"},
      {{{"env", "\xff"}}, "UTF-8"},
      {{{"env", "a"}, {"env", "b"}}, "twice"},
  };
  for (const auto& [labels, message] : bad) {
    absl::Status s = py::ValidateLabels(labels);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << labels[0].first;
    EXPECT_NE(Error(s).find(message), std::string::npos) << Error(s);
  }
  py::Labels many;
  for (int i = 0; i < 27; ++i) many.emplace_back("l" + std::to_string(i), "v");
  EXPECT_NE(Error(py::ValidateLabels(many)).find("at most 26"), std::string::npos);
}

TEST(PyroscopeProtocol, BuildsNameQueryAndSampleTypeConfig) {
  EXPECT_EQ(py::SeriesName("app", {{"b", "2"}, {"a", "1"}}), "app{a=1,b=2}");
  EXPECT_EQ(py::SeriesName("app", {}), "app{}");
  EXPECT_EQ(py::QueryEscape("app{a=1, b/c~}"), "app%7Ba%3D1%2C+b%2Fc~%7D");
  EXPECT_EQ(py::IngestQuery("app{a=1}", 1700000000000000000, 1700000015000000000),
            "?aggregationType=&from=1700000000000000000&name=app%7Ba%3D1%7D&sampleRate=0"
            "&spyName=lockprof&units=&until=1700000015000000000");
  EXPECT_EQ(py::SampleTypeConfig(ProfileId::kMutex),
            "{\"contentions\":{\"units\":\"lock_samples\",\"display-name\":\"mutex_count\"},"
            "\"delay\":{\"units\":\"lock_nanoseconds\",\"display-name\":\"mutex_duration\"}}");
  EXPECT_EQ(py::SampleTypeConfig(ProfileId::kHold),
            "{\"hold\":{\"units\":\"lock_nanoseconds\",\"display-name\":\"hold_duration\"},"
            "\"holds\":{\"units\":\"lock_samples\",\"display-name\":\"hold_count\"}}");
  EXPECT_EQ(py::Base64("user:pass"), "dXNlcjpwYXNz");
  EXPECT_EQ(py::Base64("a"), "YQ==");
  EXPECT_EQ(py::Base64("ab"), "YWI=");
  EXPECT_EQ(py::RandomBoundary().size(), 60u);
}

// What pyroscope-go's uploadProfile builds, by Go's own mime/multipart,
// url and encoding/json packages, for the same inputs.
constexpr char kGoClient[] = R"(package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/url"
	"os"
)

type SampleType struct {
	Units       string `json:"units,omitempty"`
	Aggregation string `json:"aggregation,omitempty"`
	DisplayName string `json:"display-name,omitempty"`
	Sampled     bool   `json:"sampled,omitempty"`
	Cumulative  bool   `json:"cumulative,omitempty"`
}

func main() {
	body := &bytes.Buffer{}
	w := multipart.NewWriter(body)
	w.SetBoundary(os.Args[1])
	fw, _ := w.CreateFormFile("profile", "profile.pprof")
	fw.Write([]byte("PROFILE\x00BYTES"))
	cfg, _ := json.Marshal(map[string]*SampleType{
		"contentions": {DisplayName: "mutex_count", Units: "lock_samples"},
		"delay":       {DisplayName: "mutex_duration", Units: "lock_nanoseconds"},
	})
	fw, _ = w.CreateFormFile("sample_type_config", "sample_type_config.json")
	fw.Write(cfg)
	w.Close()
	q := url.Values{}
	q.Set("name", "app{a=1}")
	q.Set("from", "1700000000000000000")
	q.Set("until", "1700000015000000000")
	q.Set("spyName", "lockprof")
	q.Set("sampleRate", "0")
	q.Set("units", "")
	q.Set("aggregationType", "")
	os.WriteFile(os.Args[2], body.Bytes(), 0o644)
	fmt.Printf("%s\n?%s\n", w.FormDataContentType(), q.Encode())
}
)";

TEST(PyroscopeProtocol, RequestIsByteForByteWhatGosEncodersWrite) {
  const std::string boundary = py::RandomBoundary();
  const std::string src = WriteTempFile(kGoClient, ".go");
  const std::string body_file = WriteTempFile("");
  int status;
  std::string out = RunCommand(
      lockprof::testing::GoEnv() + "go run " + src + " " + boundary + " " + body_file + " 2>&1",
      &status);
  ASSERT_EQ(status, 0) << out;
  const py::MultipartBody ours = py::BuildMultipart(
      std::string("PROFILE\0BYTES", 13), py::SampleTypeConfig(ProfileId::kMutex), boundary);
  EXPECT_EQ(out, ours.content_type + "\n" +
                     py::IngestQuery("app{a=1}", 1700000000000000000, 1700000015000000000) + "\n");
  EXPECT_EQ(lockprof::testing::Receiver::ReadFile(body_file), ours.body);
}

// curl's answer to a POST /ingest of `body` (status and message).
std::string Post(const lockprof::testing::Receiver& r, const std::string& query,
                 const py::MultipartBody& body, const std::string& method = "POST") {
  const std::string file = WriteTempFile(body.body);
  return RunCommand("curl -s -w ' %{http_code}' -X " + method +
                    " -H 'Content-Type: " + body.content_type + "' --data-binary @" + file + " '" +
                    r.url() + "/ingest" + query + "'");
}

TEST(PyroscopeProtocol, StrictReceiverRefusesWhatPyroscopeRefuses) {
  lockprof::testing::Receiver r;
  const std::string profile = lockprof::testing::FetchProfileBytes("mutex");
  const int64_t now = lockprof::agent::WallNanos();
  const std::string q = py::IngestQuery("app{env=x}", now - 1000000000, now);
  const std::string config = py::SampleTypeConfig(ProfileId::kMutex);
  const std::string b = py::RandomBoundary();
  const py::MultipartBody good = py::BuildMultipart(profile, config, b);
  EXPECT_EQ(Post(r, q, good), " 200");

  const std::pair<std::string, std::string> refused[] = {
      {Post(r, q, good, "PUT"), "405"},
      {Post(r, q + "&format=pprof", good), "unexpected query parameter \"format\""},
      {Post(r, py::IngestQuery("app{env=x}", now / 1000000000, now), good), "19 digits"},
      {Post(r, py::IngestQuery("app{env-x=1}", now - 1, now), good), "invalid label name"},
      {Post(r, py::IngestQuery("bad app{}", now - 1, now), good), "invalid service name"},
      {Post(r, q.substr(0, q.find("&name=")) + q.substr(q.find("&sampleRate")), good),
       "missing query parameter \"name\""},
      {Post(r, q, py::BuildMultipart("not a profile", config, b)), "failed to parse pprof"},
      {Post(r, q, py::BuildMultipart(profile, "{\"delay\":{\"unit\":\"x\"}}", b)), "unknown field"},
      {Post(r, q, py::BuildMultipart(profile, "{\"delay\":{}}", b)), "no entry"},
  };
  for (const auto& [answer, expected] : refused) {
    EXPECT_NE(answer.find(expected), std::string::npos) << answer;
    EXPECT_EQ(answer.find(" 200"), std::string::npos) << answer;
  }
  py::MultipartBody prev = good;
  const std::string field = "name=\"sample_type_config\"";
  prev.body.replace(prev.body.find(field), field.size(), "name=\"prev_profile\"");
  EXPECT_NE(Post(r, q, prev).find("unsupported client version"), std::string::npos);
}

TEST(UploaderConfig, RejectsBadConfigurationWithWhatToFix) {
  lockprof::UploaderOptions o;
  o.url = "http://pyroscope:4040";
  o.app_name = "svc";
  lockprof::agent::UploaderConfig c;
  ASSERT_TRUE(lockprof::agent::MakeUploaderConfig(o, &c).ok());
  EXPECT_EQ(c.series_name, "svc{}");

  auto error = [&](auto change) {
    lockprof::UploaderOptions bad = o;
    change(bad);
    absl::Status s = lockprof::StartUploader(bad);
    EXPECT_FALSE(lockprof::UploaderRunning());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return Error(s);
  };
  using O = lockprof::UploaderOptions;
  EXPECT_NE(error([](O& x) { x.url = "pyroscope:4040"; }).find("scheme"), std::string::npos);
  EXPECT_NE(error([](O& x) { x.url = ""; }).find("URL is empty"), std::string::npos);
  EXPECT_NE(error([](O& x) { x.app_name = ""; }).find("name is empty"), std::string::npos);
  EXPECT_NE(error([](O& x) { x.labels = {{"env-x", "1"}}; }).find("env-x"), std::string::npos);
  EXPECT_NE(error([](O& x) { x.basic_auth_user = "u"; }).find("password"), std::string::npos);
  EXPECT_NE(error([](O& x) {
              x.basic_auth_user = "a:b";
              x.basic_auth_password = "p";
            }).find("':'"),
            std::string::npos);
  EXPECT_NE(error([](O& x) {
              x.tenant_id = "t";
              x.headers = {{"x-scope-orgid", "u"}};
            }).find("not both"),
            std::string::npos);
  // Pyroscope trims white space (Go's unicode.IsSpace) from label values.
  for (const char* value : {"\tv", "v\n", "\xC2\xA0v", "v\xE3\x80\x80"}) {
    EXPECT_NE(error([value](O& x) {
                x.labels = {{"k", value}};
              }).find("white space"),
              std::string::npos)
        << value;
  }
  // A "never" of milliseconds::max() would overflow the clock it is added to.
  for (auto never : {+[](O& x) { x.interval = std::chrono::milliseconds::max(); },
                     +[](O& x) { x.request_timeout = std::chrono::milliseconds::max(); },
                     +[](O& x) { x.shutdown_timeout = std::chrono::milliseconds::max(); },
                     +[](O& x) { x.backoff_max = std::chrono::hours(25); }}) {
    EXPECT_NE(error(never).find("at most a day"), std::string::npos);
  }
  EXPECT_NE(error([](O& x) {
              x.basic_auth_user = x.basic_auth_password = "u";
              x.bearer_token = "t";
            }).find("choose one"),
            std::string::npos);
  EXPECT_NE(error([](O& x) {
              x.headers = {{"X-A", "a\r\nb"}};
            }).find("line break"),
            std::string::npos);
  EXPECT_NE(error([](O& x) { x.profiles = {"heap"}; }).find("unknown profile"), std::string::npos);
  EXPECT_NE(error([](O& x) {
              x.profiles = {"mutex", "block", "mutex"};
            }).find("listed twice"),
            std::string::npos);
  EXPECT_NE(error([](O& x) { x.interval = std::chrono::milliseconds(0); }).find("interval"),
            std::string::npos);
  // A ':' in a host is an IPv6 address's, in brackets: not host "a:b".
  for (const char* url : {"http://a:b:80", "http://[a:b]:80"}) {
    EXPECT_NE(error([url](O& x) { x.url = url; }).find("not an IPv6 address in brackets"),
              std::string::npos)
        << url;
  }
  EXPECT_NE(error([](O& x) {
              x.headers = {{"X-A", "1"}, {"x-a", "3"}};
            }).find("given twice"),
            std::string::npos);
}

TEST(UploaderConfig, ReadsTheEnvironment) {
  lockprof::UploaderOptions o;
  unsetenv("LOCKPROF_PYROSCOPE_URL");
  EXPECT_EQ(lockprof::UploaderOptionsFromEnvironment(&o).code(), absl::StatusCode::kNotFound);
  setenv("LOCKPROF_PYROSCOPE_URL", "http://p:4040", 1);
  setenv("LOCKPROF_PYROSCOPE_LABELS", "env=prod,region=eu", 1);
  setenv("LOCKPROF_PYROSCOPE_HEADERS", "X-A=1", 1);
  setenv("LOCKPROF_PYROSCOPE_TENANT_ID", "acme", 1);
  setenv("LOCKPROF_PYROSCOPE_INTERVAL", "30", 1);
  setenv("LOCKPROF_PYROSCOPE_PROFILES", "mutex,block", 1);
  ASSERT_TRUE(lockprof::UploaderOptionsFromEnvironment(&o).ok());
  EXPECT_EQ(o.app_name, program_invocation_short_name);
  EXPECT_EQ(o.labels, (py::Labels{{"env", "prod"}, {"region", "eu"}}));
  EXPECT_EQ(o.headers, (py::Labels{{"X-A", "1"}}));
  EXPECT_EQ(o.tenant_id, "acme");
  EXPECT_EQ(o.interval, std::chrono::seconds(30));
  EXPECT_EQ(o.profiles, (std::vector<std::string>{"mutex", "block"}));
  setenv("LOCKPROF_PYROSCOPE_LABELS", "envprod", 1);
  EXPECT_NE(Error(lockprof::UploaderOptionsFromEnvironment(&o)).find("LOCKPROF_PYROSCOPE_LABELS"),
            std::string::npos);
  setenv("LOCKPROF_PYROSCOPE_LABELS", "", 1);
  setenv("LOCKPROF_PYROSCOPE_INTERVAL", "15s", 1);
  EXPECT_NE(Error(lockprof::UploaderOptionsFromEnvironment(&o)).find("whole seconds"),
            std::string::npos);
  // The default application name is the program's, in the characters an
  // application name may have.
  char* const name = program_invocation_short_name;
  char odd[] = "my+tool v2";
  program_invocation_short_name = odd;
  setenv("LOCKPROF_PYROSCOPE_INTERVAL", "30", 1);
  ASSERT_TRUE(lockprof::UploaderOptionsFromEnvironment(&o).ok());
  program_invocation_short_name = name;
  EXPECT_EQ(o.app_name, "my_tool_v2");
  for (const char* v : {"URL", "LABELS", "HEADERS", "TENANT_ID", "INTERVAL", "PROFILES"}) {
    unsetenv((std::string("LOCKPROF_PYROSCOPE_") + v).c_str());
  }
}

// A misspelt LOCKPROF_PYROSCOPE_ variable is said on stderr (it was ignored
// without a word: a misspelt token's uploads went out unauthenticated).
TEST(UploaderConfig, SaysWhichVariablesItIgnores) {
  setenv("LOCKPROF_PYROSCOPE_URL", "http://p:4040", 1);
  setenv("LOCKPROF_PYROSCOPE_APP_NAME", "checkout", 1);
  setenv("LOCKPROF_PYROSCOPE_AUTH_TOKEN", "tok", 1);
  setenv("LOCKPROF_PYROSCOPE_TENANT_ID", "acme", 1);
  lockprof::UploaderOptions o;
  ::testing::internal::CaptureStderr();
  const absl::Status status = lockprof::UploaderOptionsFromEnvironment(&o);
  const std::string said = ::testing::internal::GetCapturedStderr();
  for (const char* v : {"URL", "APP_NAME", "AUTH_TOKEN", "TENANT_ID"}) {
    unsetenv((std::string("LOCKPROF_PYROSCOPE_") + v).c_str());
  }
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_NE(said.find("ignoring LOCKPROF_PYROSCOPE_APP_NAME"), std::string::npos) << said;
  EXPECT_NE(said.find("ignoring LOCKPROF_PYROSCOPE_AUTH_TOKEN"), std::string::npos) << said;
  EXPECT_EQ(said.find("TENANT_ID"), std::string::npos) << said;
  EXPECT_EQ(said.find("tok"), std::string::npos) << said;  // Names only, never values.
}

}  // namespace
