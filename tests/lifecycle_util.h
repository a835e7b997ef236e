// Helpers of the lifecycle tests (fork, dlopen, static storage, thread
// exit): exact sampling, in-process profiles, and forked children.
#ifndef LOCKPROF_TESTS_LIFECYCLE_UTIL_H_
#define LOCKPROF_TESTS_LIFECYCLE_UTIL_H_

#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "profile.pb.h"
#include "test_util.h"

namespace lockprof::testing {

// Every sampler at rate 1 while the object lives: every event is recorded,
// so counts are exact. Restores the previous rates.
class AllRatesAtOne : public ScopedRates {
 public:
  AllRatesAtOne() : ScopedRates(1, 1, 1) {}
};

// The first value of label `key` on any sample whose stack has `function`.
inline std::string LabelAt(const perftools::profiles::Profile& p, const std::string& function,
                           const std::string& key) {
  for (const auto& s : p.sample()) {
    bool found = false;
    for (const std::string& f : StackFunctions(p, s)) found |= f.find(function) != f.npos;
    if (!found) continue;
    for (const auto& l : s.label()) {
      if (p.string_table(int(l.key())) == key) return p.string_table(int(l.str()));
    }
  }
  return "";
}

// Whether a child forked from a multithreaded process can allocate. glibc's
// malloc is fork-safe; the AddressSanitizer allocator of clang 14 is not (a
// child forked while another thread refills an allocator cache deadlocks in
// its first allocation), whatever lockprof does.
#if defined(__SANITIZE_ADDRESS__)
#define LOCKPROF_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOCKPROF_TEST_ASAN 1
#endif
#endif
#ifdef LOCKPROF_TEST_ASAN
inline constexpr bool kAllocatorIsForkSafe = false;
#else
inline constexpr bool kAllocatorIsForkSafe = true;
#endif

// Where the allocator is not fork-safe, waits (at most `limit`) until every
// other thread of the process sleeps in a system call, twice in a row 1 ms
// apart: a thread asleep there holds no allocator lock, whereas one that is
// running or preempted may (the services' threads allocate as they start,
// and an idle admin-server worker frees its buffers after answering). Other
// threads blocked on purpose (a lock's waiters) sleep too; threads that must
// stay busy make the wait end at `limit`. Elsewhere returns at once.
inline void WaitForOtherThreadsAsleepIfAllocatorIsNotForkSafe(
    std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) {
  if (kAllocatorIsForkSafe) return;
  auto all_asleep = [] {
    DIR* dir = opendir("/proc/self/task");
    if (dir == nullptr) return true;
    bool asleep = true;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      const pid_t tid = pid_t(std::atoi(e->d_name));
      if (tid != gettid() && !IsAsleep(tid)) asleep = false;
    }
    closedir(dir);
    return asleep;
  };
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (int in_a_row = 0; in_a_row < 2 && std::chrono::steady_clock::now() < deadline;) {
    in_a_row = all_asleep() ? in_a_row + 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// ThreadSanitizer aborts a forked child of a multithreaded process that
// starts a thread, unless told otherwise. A test binary whose children start
// threads says so by writing LOCKPROF_ALLOW_THREADS_AFTER_FORK() once, at
// global scope.
#ifdef LOCKPROF_TEST_TSAN
#define LOCKPROF_ALLOW_THREADS_AFTER_FORK() \
  extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }
#else
#define LOCKPROF_ALLOW_THREADS_AFTER_FORK()
#endif

// Threads that each run a body over and over until the object is
// destroyed (also when an ASSERT returns early).
class BackgroundLoops {
 public:
  BackgroundLoops() = default;
  BackgroundLoops(const BackgroundLoops&) = delete;
  BackgroundLoops& operator=(const BackgroundLoops&) = delete;
  ~BackgroundLoops() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }
  void Loop(std::function<void()> body) {
    std::atomic<int64_t>* runs = &runs_.emplace_back(0);
    threads_.emplace_back([this, runs, body = std::move(body)] {
      while (!stop_.load()) {
        if (paused_.load()) {
          // Asleep rather than yielding, so that RunInForkedChild's wait
          // for sleeping threads (under ASan) ends at once.
          std::this_thread::sleep_for(std::chrono::microseconds(200));
          continue;
        }
        running_.fetch_add(1);
        if (!paused_.load()) {
          body();
          runs->fetch_add(1);
        }
        running_.fetch_sub(1);
      }
    });
  }
  // Returns once no body runs, and none starts until Resume().
  void Pause() {
    paused_ = true;
    while (running_.load() > 0) std::this_thread::yield();
  }
  void Resume() { paused_ = false; }
  // Waits (at most `limit`) until every loop has run its body `times` times
  // since this call, so that all of them are surely busy; returns whether
  // they did.
  bool WaitUntilEachRan(int64_t times, std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::vector<int64_t> from;
    for (size_t i = 0; i < threads_.size(); ++i) from.push_back(runs_[i].load());
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (size_t i = 0; i < threads_.size(); ++i) {
      while (runs_[i].load() - from[i] < times) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return true;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> paused_{false};
  std::atomic<int> running_{0};
  std::deque<std::atomic<int64_t>> runs_;  // Bodies run, per loop (stable addresses).
  std::vector<std::thread> threads_;
};

struct ForkResult {
  int exit_code = -1;  // -1 unless the child exited normally.
  bool timed_out = false;
  std::string output;  // What the child wrote to its out_fd.
};

// Forks; the child runs body(out_fd) and _exit()s with its result (no
// static destructors, no leak check of the parent's copy). The parent reads
// the child's output and waits, killing it after `timeout_s` (a deadlocked
// child).
inline ForkResult RunInForkedChild(const std::function<int(int out_fd)>& body, int timeout_s = 60) {
  ForkResult r;
  int fds[2];
  if (pipe(fds) != 0) return r;
  WaitForOtherThreadsAsleepIfAllocatorIsNotForkSafe();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    _exit(body(fds[1]));
  }
  close(fds[1]);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fds[0], POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, int(left.count())) == 0) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    char buf[65536];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    r.output.append(buf, size_t(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!r.timed_out && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

// In a forked child: puts the process at its thread limit (a container's
// pids.max, RLIMIT_NPROC), as an unprivileged user if it runs as root (root
// is exempt from the limit), so that no thread can start any more. 0 if so;
// else which step failed (3: setuid, 4: setrlimit, 5: a thread still starts).
inline int AtThreadLimit() {
  if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 3;
  prctl(PR_SET_DUMPABLE, 1);  // /proc/self stays readable.
  const rlimit one{1, 1};
  if (setrlimit(RLIMIT_NPROC, &one) != 0) return 4;
  pthread_t t;
  if (pthread_create(
          &t, nullptr, [](void*) -> void* { return nullptr; }, nullptr) == 0) {
    pthread_join(t, nullptr);
    return 5;
  }
  return 0;
}

// Writes all of `data` to fd; false on error.
inline bool WriteAll(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_LIFECYCLE_UTIL_H_
