// Helpers shared by the tests: running commands (go tool pprof, curl) and
// decoding profiles.
#ifndef LOCKPROF_TESTS_TEST_UTIL_H_
#define LOCKPROF_TESTS_TEST_UTIL_H_

#include <pthread.h>
#include <sched.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "profile.pb.h"

// Defined in the ThreadSanitizer build, whose instrumentation makes every
// lockprof path several times slower.
#if defined(__SANITIZE_THREAD__)
#define LOCKPROF_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LOCKPROF_TEST_TSAN 1
#endif
#endif

namespace lockprof::testing {

// Runs `command` through /bin/sh; returns its stdout and sets *status to its
// exit status.
std::string RunCommand(const std::string& command, int* status = nullptr);

// Decodes a gzipped (or raw) profile.proto. Fails the test on error.
perftools::profiles::Profile ParseProfile(const std::string& data);

// For a test of process-wide state that earlier tests of a whole run of the
// binary change (ctest runs each test in a process of its own; a developer
// may run the binary whole): `if (!InFreshProcess()) return;` at its top
// runs the test again in a new process of this binary that runs only this
// test, and fails it if that one fails (with its output); the new process
// goes on with the test.
bool InFreshProcess();

// How many times `needle` occurs in `s` (overlapping occurrences count).
size_t CountOf(const std::string& s, const std::string& needle);

// The contents of the file at `path` ("" if it cannot be read).
std::string ReadFile(const std::string& path);

// std::chrono::steady_clock (CLOCK_MONOTONIC, lockprof's clock) in ns.
int64_t NowNanos();

// Busy-waits (never sleeps) for `ns` nanoseconds of NowNanos() time.
void SpinFor(int64_t ns);

// True while thread `tid` of this process sleeps in the kernel (state 'S' in
// /proc/self/task/<tid>/stat: a futex wait, say); false if it runs, is
// runnable, or cannot be read.
bool IsAsleep(pid_t tid);

// The calling thread's id, as IsAsleep takes it.
pid_t ThisThreadId();

// How many times the calling thread has slept in the kernel so far (its
// voluntary context switches: a futex, poll or I/O wait), as opposed to
// being preempted, which a loaded machine does to any thread.
int64_t ThreadVoluntarySwitches();

// The q-quantile (0 <= q < 1) of `values`; 0 if there are none.
int64_t Percentile(std::vector<int64_t> values, double q);

// Polls `done` every 10 ms for at most `timeout_ms`; returns its last answer.
bool WaitFor(const std::function<bool()>& done, int timeout_ms = 30000);

// Waits, at most `limit`, until thread `tid` sleeps in the kernel: a thread
// that has just said it is about to lock sleeps only once the lock made it
// wait. Returns whether it did.
bool WaitUntilAsleep(pid_t tid, std::chrono::milliseconds limit = std::chrono::seconds(30));

// Pins the calling thread to the first CPU it may run on and returns that
// CPU (-1 on failure). Two threads pinned so share one CPU: a test that also
// lowers one to SCHED_IDLE (RunAtIdlePriority) makes the other preempt it
// the moment it wakes the other up, inside the window right after a
// release, which is otherwise a few instructions wide.
inline int PinToFirstCpu() {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return -1;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof(one), &one) == 0 ? cpu : -1;
  }
  return -1;
}

// Moves the calling thread to SCHED_IDLE: it runs only while nothing else
// on its CPU wants to. Returns whether that worked (lowering one's own
// policy needs no privilege).
inline bool RunAtIdlePriority() {
  sched_param param{};
  return pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0;
}

// Starts `n` threads running `body` (which blocks: on a lock the caller
// holds, say) and returns them once every one sleeps in it, which is what
// a test of waiters needs before it acts. Fails the test if one never does.
std::vector<std::thread> StartBlocked(int n, const std::function<void()>& body);

// A line of /proc/self/status ("VmHWM", "VmRSS") in KiB; -1 if absent.
long StatusKiB(const std::string& field);

// Resets this process's peak resident set (VmHWM) to its current size.
bool ResetPeakMemory();

// A TCP port of 127.0.0.1 that was free a moment ago (bound to port 0,
// then released), for a server that must be given its port.
int FreeLoopbackPort();

// Writes `data` to a new temporary file and returns its path.
std::string WriteTempFile(const std::string& data, const std::string& suffix = "");

// The sum of value[index] over the samples whose stacks contain a function
// whose name contains `function` (all samples if empty).
int64_t SumValues(const perftools::profiles::Profile& p, int index,
                  const std::string& function = "");

// As SumValues, over the samples that also carry every string label in
// `labels` ({key, value} pairs, e.g. {{"lock", "cache.main"}, {"mode", "read"}}).
int64_t SumValuesWithLabels(const perftools::profiles::Profile& p, int index,
                            const std::string& function,
                            const std::vector<std::pair<std::string, std::string>>& labels);

// The value of a sample's string label `key`, or "" if it has none.
std::string LabelValue(const perftools::profiles::Profile& p, const perftools::profiles::Sample& s,
                       const std::string& key);

// lockprof's profile `name` now, as WriteProfile writes it (debug=0: gzipped
// profile.proto; debug=1: Go's legacy text). Fails the test on error.
std::string FetchProfileBytes(const std::string& name, int debug = 0);
// lockprof's profile `name` now (WriteProfile, debug=0), decoded.
perftools::profiles::Profile FetchProfile(const std::string& name);
// The same, written to a new temporary file for go tool pprof; returns its path.
std::string FetchProfileToFile(const std::string& name);

// The growth of one total of a lockprof profile (value[index] over the
// samples SumValuesWithLabels selects) since construction: profiles are
// cumulative for the life of the process, and a test may run repeatedly.
class ProfileDelta {
 public:
  ProfileDelta(std::string profile, int index, std::string function,
               std::vector<std::pair<std::string, std::string>> labels);
  int64_t Get() const { return Current() - before_; }

 private:
  int64_t Current() const;
  std::string profile_;
  int index_;
  std::string function_;
  std::vector<std::pair<std::string, std::string>> labels_;
  int64_t before_;
};

// Sets the mutex fraction, block rate and hold rate for the life of the
// object and restores the previous ones when it goes, even when an ASSERT
// leaves the test early. kKeep leaves a rate as it is; ScopedRates() only
// saves them (for a test that changes rates as it goes). Every test that
// changes a rate holds one, so no test sees another's rates.
class ScopedRates {
 public:
  static constexpr int kKeep = -1;
  ScopedRates() : ScopedRates(kKeep, kKeep, kKeep) {}
  ScopedRates(int mutex_fraction, int64_t block_rate_ns, int hold_rate);
  ~ScopedRates();
  ScopedRates(const ScopedRates&) = delete;
  ScopedRates& operator=(const ScopedRates&) = delete;

 private:
  int fraction_;
  int64_t block_;
  int hold_;
};
// The sum of value[index] over the samples carrying the string label
// key=value.
int64_t SumValuesWithLabel(const perftools::profiles::Profile& p, int index, const std::string& key,
                           const std::string& value);

// Names of the functions in a sample's stack, leaf first.
std::vector<std::string> StackFunctions(const perftools::profiles::Profile& p,
                                        const perftools::profiles::Sample& s);

// The samples labelled lock=`lock`.
std::vector<const perftools::profiles::Sample*> SamplesForLock(
    const perftools::profiles::Profile& p, const std::string& lock);

// The value of the numeric label `key` on `s`, or -1 if it has none.
int64_t NumLabel(const perftools::profiles::Profile& p, const perftools::profiles::Sample& s,
                 const std::string& key);

// Environment prefix for running go (GOCACHE, HOME, no network).
std::string GoEnv();

// An HTTP request with curl to 127.0.0.1:port. Returns the body; sets the
// HTTP status and the response headers (lower-cased names, one per line).
std::string HttpGet(int port, const std::string& path_and_query, int* status = nullptr,
                    std::string* headers = nullptr);

// `go tool pprof <args>` with the test environment; returns its output
// (stdout and stderr) and sets *status.
std::string GoPprof(const std::string& args, int* status = nullptr);

// The first row of the table in `go tool pprof -top` output, or "".
std::string TopFunction(const std::string& top);

// A child process whose stdout is read line by line.
class Child {
 public:
  // Starts argv[0] with `argv`; extra environment entries ("K=V") added,
  // replacing inherited ones of the same name.
  explicit Child(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
  ~Child();  // SIGTERM, then wait.
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Reads stdout until a line contains `needle` (returned) or EOF / timeout
  // ("" then).
  std::string WaitForLine(const std::string& needle, int timeout_s = 30);
  // Sends SIGTERM and returns the exit status.
  int Stop();
  // Waits for the child to exit by itself, killing it (SIGKILL) after
  // `timeout_s`; returns its exit status, or -1 if it did not exit normally.
  int Wait(int timeout_s = 60);
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  int out_fd_ = -1;
  std::string buffered_;
};

// True if `status` (from RunCommand) says the command died of SIGABRT
// (sh may report that as exit status 128 + 6).
bool DiedOfAbort(int status);

// Polls /debug/lockprof/held on `port` until it shows `n` waiting threads
// (for up to 30 s); returns its last JSON.
std::string WaitForWaiters(int port, size_t n);

// The number after the first `key` in `text` at or after `from`; -1 if none.
int64_t NumberAfter(const std::string& text, const std::string& key, size_t from = 0);

// The port in a line containing "http://127.0.0.1:PORT", or 0.
int PortFromLine(const std::string& line);

// In Prometheus exposition `text`, the value of the sample named exactly
// `series` (name{labels}), or NaN if there is none.
double MetricValue(const std::string& text, const std::string& series);

// This process's metrics, as lockprof::WriteMetrics writes them.
std::string ScrapeMetrics();

// Makes a thread wait `hold` for `mu` (held exclusively by this thread):
// the waiter says it is about to lock, runs `wait` (lock and unlock), and
// this thread holds on for `hold`. (The waiter could, in theory, stay off the
// CPU that long: callers retry.)
template <typename Lock, typename Wait>
void ContendOnce(Lock& mu, std::chrono::milliseconds hold, Wait wait,
                 std::thread::id* waiter_id = nullptr) {
  std::atomic<bool> about_to_lock{false};
  mu.lock();
  std::thread waiter([&] {
    about_to_lock = true;
    wait();
  });
  if (waiter_id != nullptr) *waiter_id = waiter.get_id();
  while (!about_to_lock) std::this_thread::yield();
  std::this_thread::sleep_for(hold);
  mu.unlock();
  waiter.join();
}

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_TEST_UTIL_H_
