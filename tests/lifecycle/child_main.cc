// lockprof-lifecycle-child: a lockprof program for the lifecycle tests to
// run as a separate process.
//
//   lockprof-lifecycle-child static     uses a static Mutex before main and
//                                       after it (child_static.cc); with
//                                       LOCKPROF_LIFECYCLE_OUT=FILE, writes
//                                       the mutex profile there at exit
//   lockprof-lifecycle-child idle       uses a Mutex, prints "ready" and
//                                       waits for a signal
//   lockprof-lifecycle-child serve MS   serves the admin endpoint (port on
//                                       stdout) under contention, then
//                                       returns from main after MS ms; an
//                                       atexit handler stops the admin
//                                       server and the uploader
//   lockprof-lifecycle-child names N    locks N Mutexes of distinct names
//                                       once each, prints "ready" and waits
//                                       for a signal
//   lockprof-lifecycle-child contend MS  contends for MS ms in
//                                       LifecycleContendedSection, then
//                                       returns from main, stopping
//                                       nothing itself (an uploader started
//                                       from the environment must flush)
//   lockprof-lifecycle-child stop-and-exit MS  calls StopUploader() on a
//                                       thread of its own, and exit(0)
//                                       MS ms later, while that stop may
//                                       still be sending the last interval
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"

// Outside namespace lockprof, not inlined: the profile names it.
__attribute__((noinline)) void LifecycleContendedSection(lockprof::Mutex* mu) {
  lockprof::MutexLock lock(mu);
  std::this_thread::sleep_for(std::chrono::microseconds(100));
}

namespace {

int Contend(int ms) {
  lockprof::SetMutexProfileFraction(1);
  lockprof::Mutex mu{"lifecycle.contend"};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      while (!stop.load()) LifecycleContendedSection(&mu);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  stop = true;
  for (auto& t : threads) t.join();
  return 0;
}

int Serve(int ms) {
  lockprof::SetMutexProfileFraction(1);
  lockprof::SetHoldProfileRate(1);
  if (!lockprof::StartAdminServer({"127.0.0.1", 0}).ok()) return 3;
  std::printf("serving http://127.0.0.1:%d/\n", lockprof::AdminServerPort());
  std::fflush(stdout);
  lockprof::Mutex mu{"lifecycle.serve"};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      while (!stop.load()) lockprof::MutexLock lock(&mu);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  stop = true;
  for (auto& t : threads) t.join();
  // Registered now, after the first requests: atexit handlers run in the
  // reverse order of registration, so this one runs before the destructors
  // of the function-local statics cpp-httplib created while serving them,
  // which its threads would otherwise still read.
  std::atexit([] {
    lockprof::StopAdminServer();
    lockprof::StopUploader();
  });
  std::printf("exiting\n");
  std::fflush(stdout);
  return 0;  // Clients are still scraping: exit must still be clean.
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "static") == 0) return 0;
  if (argc >= 2 && std::strcmp(argv[1], "idle") == 0) {
    lockprof::Mutex mu;
    { lockprof::MutexLock lock(&mu); }
    std::printf("ready\n");
    std::fflush(stdout);
    pause();
    return 0;
  }
  if (argc >= 3 && std::strcmp(argv[1], "names") == 0) {
    static char names[1000][24];  // Lock names are never copied: they must live on.
    const int n = std::min(std::atoi(argv[2]), 1000);
    // On a new thread: this one drew its hold-sampling stride before main,
    // maybe before the environment's rate applied.
    std::thread([n] {
      for (int i = 0; i < n; ++i) {
        std::snprintf(names[i], sizeof names[i], "names.%d", i);
        // Static storage, never rewritten once named: the name outlives the
        // lock, so it may be passed as the const array a LockName takes.
        const char(&name)[24] = names[i];
        lockprof::Mutex mu{name};
        lockprof::MutexLock lock(&mu);
      }
    }).join();
    std::printf("ready\n");
    std::fflush(stdout);
    pause();
    return 0;
  }
  if (argc >= 3 && std::strcmp(argv[1], "serve") == 0) return Serve(std::atoi(argv[2]));
  if (argc >= 3 && std::strcmp(argv[1], "contend") == 0) return Contend(std::atoi(argv[2]));
  if (argc >= 3 && std::strcmp(argv[1], "stop-and-exit") == 0) {
    std::thread([] { lockprof::StopUploader(); }).detach();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(argv[2])));
    std::exit(0);
  }
  std::fprintf(stderr, "usage: %s static|idle|names N|serve MS|contend MS|stop-and-exit MS\n",
               argv[0]);
  return 2;
}
