#include "lockprof/agent/uploader.h"

#include <chrono>
#include <memory>
#include <mutex>

#include "lockprof/agent/base/env.h"
#include "lockprof/agent/base/service.h"
#include "lockprof/agent/metrics/self_metrics.h"
#include "lockprof/agent/pyroscope/ingest_client.h"
#include "lockprof/agent/pyroscope/upload_loop.h"
#include "lockprof/agent/pyroscope/upload_positions.h"
#include "lockprof/agent/pyroscope/uploader_config.h"
#include "lockprof/agent/record/clock.h"

namespace lockprof {

namespace agent {
namespace {

// Guarded by g_slot's mutex. Never destroyed, as the slot: a thread may
// still start or stop an uploader while statics are destroyed at exit; and
// made on first use, which may come from another static initialiser (the
// one below makes it before main, so that fork()'s child handler finds it).
UploadPositions& TheUploadPositions() {
  static UploadPositions* const positions = new UploadPositions;
  return *positions;
}
[[maybe_unused]] UploadPositions& g_positions_made = TheUploadPositions();

// In a forked child, after the slot forgot the parent's uploader: its
// queue and its positions are not the child's.
void ForgetInChild(Uploader*) {
  SetUploadQueueLength(0);
  TheUploadPositions().ForgetInChild();
}

ServiceSlot<Uploader> g_slot(ForkRank::kUploader, &ForgetInChild);

void StopUploader(bool at_exit) {
  // Its locks (OpenSSL's, httplib's, its own) are lockprof's, not the program's.
  RecorderScope own;
  Uploader* u;
  {
    std::unique_lock<std::mutex> l(g_slot.mutex());
    // A stop or start in progress on another thread has the positions, and
    // the slot is empty meanwhile: wait for it, and stop what it installs.
    // The exit waits until that one's deadline: it would otherwise end the
    // process before the last interval is sent, and destroy the statics the
    // request uses under it.
    if (at_exit) {
      TheUploadPositions().WaitForStopUntilItsDeadline(l,
                                                       [] { return g_slot.instance != nullptr; });
    } else {
      TheUploadPositions().WaitForStop(l, [] { return g_slot.instance != nullptr; });
    }
    u = g_slot.instance;
    g_slot.instance = nullptr;
    // A second past its shutdown deadline, to abort its request and end.
    if (u != nullptr) {
      TheUploadPositions().Stopping(Clock::now() + u->shutdown_timeout() + std::chrono::seconds(1));
    }
  }
  if (u == nullptr) return;
  if (at_exit) {
    u->StopAtExit();
  } else {
    u->Stop();
  }
  Positions positions = u->TakePositions();
  delete u;  // Before the positions go back: an exit waiting for them may end the process.
  std::lock_guard<std::mutex> l(g_slot.mutex());
  TheUploadPositions().Give(std::move(positions));
}

void StopUploaderAtExit() { StopUploader(/*at_exit=*/true); }

}  // namespace
}  // namespace agent

absl::Status StartUploader(const UploaderOptions& options) {
  // Its locks (OpenSSL's, httplib's, its own) are lockprof's, not the program's.
  agent::RecorderScope own;
  agent::UploaderConfig config;
  if (absl::Status s = agent::MakeUploaderConfig(options, &config); !s.ok()) return s;
  if (!agent::StartingFromEnvironment()) agent::ApplyEnvironmentUrl(options, &config);
  // Registered after WarmUpHttpClient(), the exit flush runs before the
  // destructors of the statics that cpp-httplib and OpenSSL create on first
  // use, not after. (The agent's own first-use statics, on the
  // profile-building path, are never destroyed.)
  agent::WarmUpHttpClient();
  agent::g_slot.StopAtExit(agent::StopUploaderAtExit);
  std::unique_lock<std::mutex> l(agent::g_slot.mutex());
  // An uploader stopping (or starting) on another thread has the positions.
  agent::TheUploadPositions().WaitForStop(l, [] { return agent::g_slot.instance != nullptr; });
  absl::StatusOr<agent::Uploader*> taken = agent::g_slot.Claim("an uploader is running");
  if (!taken.ok()) return taken.status();
  // The environment's uploader, taken over: the new one continues its
  // intervals and sends its queue.
  const std::unique_ptr<agent::Uploader> previous(*taken);
  agent::Positions positions;
  if (previous == nullptr) positions = agent::TheUploadPositions().Take(agent::WallNanos());
  // Until it is installed, a stop or the exit flush on another thread waits
  // for this start (the slot is empty meanwhile): an uploader installed
  // after them would run on past its stop, or into the statics' destruction.
  // The previous one's hand-over is its stop without a grace.
  agent::TheUploadPositions().Stopping(
      agent::Clock::now() +
      (previous != nullptr ? previous->shutdown_timeout() : std::chrono::milliseconds(0)) +
      std::chrono::seconds(1));
  // Not under the slot's mutex, which every fork() takes: stopping the
  // previous uploader aborts its request in flight, and cpp-httplib's abort
  // waits for a connect in progress (up to a request timeout). Meanwhile
  // the positions are out: another start waits above.
  l.unlock();
  auto* started = new agent::Uploader(std::move(config), std::move(positions), previous.get());
  l.lock();
  if (!started->running()) {
    agent::TheUploadPositions().Give(started->TakePositions());
    delete started;
    return absl::UnavailableError(
        "cannot start the uploader's threads (the process is at its thread limit)");
  }
  agent::g_slot.Install(started);
  agent::TheUploadPositions().Started();
  return absl::OkStatus();
}

void StopUploader() { agent::StopUploader(/*at_exit=*/false); }

bool UploaderRunning() {
  std::lock_guard<std::mutex> l(agent::g_slot.mutex());
  return agent::g_slot.instance != nullptr;
}

// LOCKPROF_PYROSCOPE_URL starts the uploader with the program. The lockprof
// CMake target forces this object into every link
// (-u lockprof_uploader_autostart).
extern "C" {
int lockprof_uploader_autostart =
    agent::AutoStartFromEnvironment("uploader not started (LOCKPROF_PYROSCOPE_*)", [] {
      UploaderOptions options;
      absl::Status s = UploaderOptionsFromEnvironment(&options);
      return s.ok() ? StartUploader(options) : s;
    });
}

}  // namespace lockprof
