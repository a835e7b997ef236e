// lockprof-precedence-child: a program that may start lockprof's services
// from code while the environment may have started them too, for
// startup_precedence_test.
//
//   lockprof-precedence-child NAME [--admin=HOST:PORT] [--token=T] [--restart]
//                             [--upload=URL] [--holds=N] [--queue]
//
// Holds "precedence.lock" N times (LOCKPROF_HOLD_RATE=1 makes the hold
// profile count each), waits until an uploader the environment started has
// sent one hold profile, then makes the calls asked for and prints what they
// returned, holds the lock N times more, prints "ready" and runs until
// SIGTERM, when it stops both services and exits 0. NAME only marks the
// command line (/debug/pprof/cmdline tells which process answered).
//
// --queue: the environment's Pyroscope (a test receiver) hangs at first, so
// that the environment's uploader queues intervals behind its request in
// flight; the first N holds go into queued intervals, and the receiver is
// told to answer before the calls.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "lockprof/agent/base/parse.h"
#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/lockprof.h"

namespace {

int g_stop_pipe[2];
void OnTerm(int) {
  const char c = 0;
  (void)!write(g_stop_pipe[1], &c, 1);
}

void Hold(lockprof::Mutex& mu, int n) {
  for (int i = 0; i < n; ++i) lockprof::MutexLock lock(&mu);
}

// The environment's uploader sends its first interval before the code takes
// over, so that the handover has an interval behind it to continue from.
void WaitForFirstHoldUpload() {
  using lockprof::agent::ProfileId;
  using lockprof::agent::UploadResult;
  for (int i = 0; i < 3000 && lockprof::UploaderRunning(); ++i) {
    if (lockprof::agent::Uploads(ProfileId::kHold, UploadResult::kSuccess) > 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The environment's uploader, whose server hangs, has a request in flight
// and `n` intervals queued behind it.
void WaitForQueue(int n) {
  for (int i = 0; i < 3000 && lockprof::agent::UploadQueueLength() < n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string Flag(int argc, char** argv, const char* name) {
  const size_t n = std::strlen(name);
  for (int i = 2; i < argc; ++i) {
    if (std::strncmp(argv[i], name, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
    if (std::strcmp(argv[i], name) == 0) return "yes";
  }
  return "";
}

void StartAdmin(const std::string& addr, const std::string& token, bool restart) {
  lockprof::AdminServerOptions o;
  std::string error;
  if (!lockprof::agent::ParseHostPort(addr, &o.address, &o.port, &error)) {
    std::printf("bad --admin: %s\n", error.c_str());
    return;
  }
  o.token = token;
  std::printf("admin start: %s\n", lockprof::StartAdminServer(o).ToString().c_str());
  if (restart) {
    lockprof::StopAdminServer();
    std::printf("admin restart: %s\n", lockprof::StartAdminServer(o).ToString().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || pipe(g_stop_pipe) != 0) return 2;
  std::signal(SIGTERM, OnTerm);
  static lockprof::Mutex mu{"precedence.lock"};
  const int holds = std::atoi(Flag(argc, argv, "--holds").c_str());
  if (Flag(argc, argv, "--queue").empty()) {
    Hold(mu, holds);
    WaitForFirstHoldUpload();
  } else {
    WaitForQueue(1);  // The request in flight was collected before the holds.
    Hold(mu, holds);
    WaitForQueue(3);  // Two intervals since, with every hold in them.
    const std::string receiver = std::getenv("LOCKPROF_PYROSCOPE_URL");
    if (std::system(("curl -s -X POST '" + receiver + "/-/mode?set=ok' >/dev/null").c_str()) != 0) {
      std::printf("cannot switch the receiver\n");
    }
    std::printf("queued: %d\n", int(lockprof::agent::UploadQueueLength()));
  }
  if (const std::string addr = Flag(argc, argv, "--admin"); !addr.empty()) {
    StartAdmin(addr, Flag(argc, argv, "--token"), !Flag(argc, argv, "--restart").empty());
  }
  if (const std::string url = Flag(argc, argv, "--upload"); !url.empty()) {
    lockprof::UploaderOptions o;
    o.url = url;
    o.app_name = "coded";
    o.interval = std::chrono::hours(1);  // Only the flush at stop uploads.
    o.profiles = {"hold"};
    std::printf("uploader start: %s\n", lockprof::StartUploader(o).ToString().c_str());
  }
  Hold(mu, holds);
  const std::string address = lockprof::AdminServerAddress();
  std::printf("admin address: %s\nuploader running: %d\nready\n",
              address.empty() ? "(none)" : address.c_str(), int(lockprof::UploaderRunning()));
  std::fflush(stdout);
  char c;
  while (read(g_stop_pipe[0], &c, 1) < 0) {
  }
  lockprof::StopUploader();
  lockprof::StopAdminServer();
  std::printf("stopped\n");
  return 0;
}
