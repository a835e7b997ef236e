// Uploads over https: to a receiver serving a self-signed certificate for
// 127.0.0.1, trusted through SSL_CERT_FILE (OpenSSL's default trust store,
// which the uploader uses); without that trust, no upload is accepted.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "lockprof/lockprof.h"
#include "pyroscope_receiver.h"
#include "test_util.h"

namespace {

using lockprof::testing::Receiver;
using lockprof::testing::RunCommand;

// A self-signed certificate and its key for IP 127.0.0.1, in a new
// directory; removed with the object.
class SelfSignedCert {
 public:
  SelfSignedCert() {
    dir_ = RunCommand("mktemp -d /tmp/lockprof_tls_XXXXXX");
    dir_.erase(dir_.find_last_not_of('\n') + 1);
    int status = 0;
    const std::string out = RunCommand(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1 -keyout " +
            key() + " -out " + cert() + " 2>&1",
        &status);
    EXPECT_EQ(status, 0) << out;
  }
  ~SelfSignedCert() { RunCommand("rm -rf " + dir_); }
  std::string cert() const { return dir_ + "/cert.pem"; }
  std::string key() const { return dir_ + "/key.pem"; }

 private:
  std::string dir_;
};

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old, had_ = true;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { had_ ? setenv(name_, old_.c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

ABSL_ATTRIBUTE_NOINLINE void TlsTestSection(lockprof::Mutex& mu) {
  std::lock_guard<lockprof::Mutex> l(mu);
  std::this_thread::sleep_for(std::chrono::microseconds(100));
}

// One upload (the shutdown flush) of a mutex profile with contention in it
// to `receiver`; returns the uploads it accepted.
size_t UploadOnceTo(const Receiver& receiver) {
  lockprof::testing::ScopedRates rates(1, lockprof::testing::ScopedRates::kKeep,
                                       lockprof::testing::ScopedRates::kKeep);
  lockprof::UploaderOptions o;
  o.url = receiver.url();
  o.app_name = "tls-test";
  o.profiles = {"mutex"};
  o.interval = std::chrono::hours(1);
  o.max_attempts = 1;
  o.log = [](const std::string& m) { std::printf("uploader: %s\n", m.c_str()); };
  EXPECT_TRUE(lockprof::StartUploader(o).ok());
  static lockprof::Mutex mu{"tls.test"};
  std::thread a([] {
    for (int i = 0; i < 200; ++i) TlsTestSection(mu);
  });
  for (int i = 0; i < 200; ++i) TlsTestSection(mu);
  a.join();
  lockprof::StopUploader();
  return receiver.Uploads("mutex").size();
}

TEST(UploaderTlsTest, UploadsOverHttpsToATrustedCertificate) {
  SelfSignedCert cert;
  Receiver receiver({"-tls-cert=" + cert.cert(), "-tls-key=" + cert.key()});
  ASSERT_EQ(receiver.url().rfind("https://", 0), 0u) << receiver.url();
  ScopedEnv trust("SSL_CERT_FILE", cert.cert());
  EXPECT_EQ(UploadOnceTo(receiver), 1u);
  const auto requests = receiver.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].status, 200) << requests[0].message;
}

// The certificate is checked: one the trust store does not hold is refused
// (the handshake fails; the receiver logs no request).
TEST(UploaderTlsTest, RefusesAnUntrustedCertificate) {
  SelfSignedCert cert, other;
  Receiver receiver({"-tls-cert=" + cert.cert(), "-tls-key=" + cert.key()});
  ScopedEnv trust("SSL_CERT_FILE", other.cert());
  EXPECT_EQ(UploadOnceTo(receiver), 0u);
  EXPECT_TRUE(receiver.Requests().empty());
}

}  // namespace
