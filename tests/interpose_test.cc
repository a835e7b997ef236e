// liblockprof_preload.so on programs that know nothing of lockprof, read
// with real clients (curl, go tool pprof) through the admin endpoint or the
// Pyroscope uploader:
//  * a std::mutex ground truth built without frame pointers at -O2: the
//    holder first in `go tool pprof -top`, delays within 5% at rate 1; the
//    same program built with AddressSanitizer;
//  * a shared SQLite connection: SQLite's own recursive mutex, contention
//    at sqlite3_* frames;
//  * xz -T4, a multi-threaded Debian tool: correct output, a non-empty
//    profile uploaded at exit.
//  * a program with its own malloc, whose allocator mutex is held while it
//    takes another: it runs to the end (nothing the interposer does inside
//    a lock call allocates through it).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "pyroscope_receiver.h"
#include "test_util.h"

namespace {

using lockprof::testing::Child;
using lockprof::testing::GoPprof;
using lockprof::testing::HttpGet;
using lockprof::testing::ParseProfile;
using lockprof::testing::RunCommand;
using lockprof::testing::SumValues;
using lockprof::testing::TopFunction;

// A port nobody listens on now (the kernel's pick, released).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

// The value after `key=` in `line`.
int64_t Field(const std::string& line, const std::string& key) {
  const size_t at = line.find(key + "=");
  return at == std::string::npos ? -1 : std::atoll(line.c_str() + at + key.size() + 1);
}

// The environment of a program run under the preload library (after
// `first`, where a program needs another library preloaded before it).
std::vector<std::string> PreloadEnv(int port, std::vector<std::string> more = {},
                                    const std::string& first = "") {
  more.push_back("LD_PRELOAD=" + (first.empty() ? "" : first + " ") + LOCKPROF_PRELOAD_PATH);
  if (port > 0) more.push_back("LOCKPROF_ADMIN_ADDR=127.0.0.1:" + std::to_string(port));
  return more;
}

// Writes profile `name` of the program behind `port` to a file.
std::string SaveProfile(int port, const std::string& name) {
  int status = 0;
  const std::string body = HttpGet(port, "/debug/pprof/" + name, &status);
  EXPECT_EQ(status, 200);
  return lockprof::testing::WriteTempFile(body, ".pb.gz");
}

// The holder program's profiles (behind `port`) against the truth it
// printed: the holder first in the mutex profile, the waiter in the block
// profile, both delays within 5%. Their files are left in `mutex_file` and
// `block_file`.
void ExpectHolderGroundTruth(Child& child, int port, std::string* mutex_file,
                             std::string* block_file) {
  const std::string truth = child.WaitForLine("truth", 60);
  ASSERT_FALSE(truth.empty());
  ASSERT_FALSE(child.WaitForLine("ready", 60).empty());
  const int64_t mutex_truth = Field(truth, "mutex_truth_ns");
  const int64_t block_truth = Field(truth, "block_truth_ns");
  const int64_t block_until_acquired = Field(truth, "block_until_acquired_ns");
  ASSERT_GT(mutex_truth, 8 * 3 * 30'000'000LL * 9 / 10);

  *mutex_file = SaveProfile(port, "mutex");
  *block_file = SaveProfile(port, "block");
  const std::string mutex_top = GoPprof("-top -sample_index=delay " + *mutex_file);
  const std::string block_top = GoPprof("-top -sample_index=delay " + *block_file);
  EXPECT_NE(TopFunction(mutex_top).find("HolderSection"), std::string::npos) << mutex_top;
  EXPECT_NE(TopFunction(block_top).find("WaiterLock"), std::string::npos) << block_top;

  const auto mutex = ParseProfile(lockprof::testing::ReadFile(*mutex_file));
  const auto block = ParseProfile(lockprof::testing::ReadFile(*block_file));
  const int64_t mutex_got = SumValues(mutex, 1, "HolderSection");
  const int64_t block_got = SumValues(block, 1, "WaiterLock");
  std::printf(
      "mutex: got %.1f ms, truth %.1f ms; block: got %.1f ms, truth %.1f ms (%.1f ms "
      "until acquired)\n",
      mutex_got / 1e6, mutex_truth / 1e6, block_got / 1e6, block_truth / 1e6,
      block_until_acquired / 1e6);
  EXPECT_NEAR(double(mutex_got), double(mutex_truth), 0.05 * double(mutex_truth));
  EXPECT_NEAR(double(block_got), double(block_truth), 0.05 * double(block_truth));
  EXPECT_LE(block_got, block_until_acquired);
}

// Not built in the sanitizer builds, whose runtime the Debian programs
// below lack (tests/CMakeLists.txt).
class InterposeTest : public ::testing::Test {};

TEST_F(InterposeTest, UnmodifiedProgramWithoutFramePointersGroundTruth) {
  const int port = FreePort();
  Child child({LOCKPROF_HOLDER_PATH},
              PreloadEnv(port, {"LOCKPROF_MUTEX_FRACTION=1", "LOCKPROF_BLOCK_RATE=1",
                                "LOCKPROF_HOLD_RATE=1"}));
  std::string mutex_file, block_file;
  ExpectHolderGroundTruth(child, port, &mutex_file, &block_file);
  const auto mutex = ParseProfile(lockprof::testing::ReadFile(mutex_file));
  // Below the interposer's frame the CFI fallback reached the thread's
  // start: the lambda that called WaiterLock.
  EXPECT_NE(GoPprof("-traces " + block_file).find("start_thread"), std::string::npos);
  // A global std::mutex is labelled by its symbol.
  EXPECT_EQ(lockprof::testing::SumValuesWithLabel(mutex, 1, "lock", "g_truth_mu"),
            SumValues(mutex, 1));
  // The hold sampler, at rate 1: each of the 8 holds lasts its 30 ms sleep.
  const std::string hold_file = SaveProfile(port, "hold");
  const auto hold = ParseProfile(lockprof::testing::ReadFile(hold_file));
  const int64_t held = SumValues(hold, 1, "HolderSection");
  // Every hold is the program's: none of the locks the libraries loaded
  // ahead of the interposer take in their constructors (OpenSSL's), nor
  // lockprof's own while it serves these requests.
  EXPECT_EQ(lockprof::testing::SumValuesWithLabel(hold, 1, "lock", "g_truth_mu"),
            SumValues(hold, 1))
      << GoPprof("-traces " + hold_file);
  EXPECT_GE(held, 8 * 30'000'000LL);
  EXPECT_LE(held, 8 * 60'000'000LL);
  // Charged to the releasing function, not to the interposer's unlock.
  const std::string hold_top = GoPprof("-top -sample_index=hold " + hold_file);
  EXPECT_NE(TopFunction(hold_top).find("HolderSection"), std::string::npos) << hold_top;
  std::remove(hold_file.c_str());
  // /metrics counts the same lock; an interposed lock counts the waits that
  // slept only, in both counters.
  const std::string metrics = HttpGet(port, "/metrics");
  const double contentions = lockprof::testing::MetricValue(
      metrics, "lockprof_lock_contentions_total{lock=\"g_truth_mu\"}");
  EXPECT_GE(contentions, 1) << metrics;
  EXPECT_EQ(
      lockprof::testing::MetricValue(metrics, "lockprof_lock_waits_total{lock=\"g_truth_mu\"}"),
      contentions);
  std::remove(mutex_file.c_str());
  std::remove(block_file.c_str());
}

// The holder built with AddressSanitizer, its runtime preloaded first (as
// ASan requires). That runtime defines glibc's __pthread_mutex_lock and
// _unlock aliases, through which the interposer reaches glibc, with no real
// function behind them: the interposer must notice and call glibc's own.
TEST_F(InterposeTest, AddressSanitizerProgramGroundTruth) {
#if !defined(LOCKPROF_HOLDER_ASAN_PATH)
  GTEST_SKIP() << "needs GCC's AddressSanitizer (the holder is built with it)";
#else
  const int port = FreePort();
  Child child({LOCKPROF_HOLDER_ASAN_PATH},
              PreloadEnv(port, {"LOCKPROF_MUTEX_FRACTION=1", "LOCKPROF_BLOCK_RATE=1"},
                         LOCKPROF_LIBASAN_PATH));
  std::string mutex_file, block_file;
  ExpectHolderGroundTruth(child, port, &mutex_file, &block_file);
  std::remove(mutex_file.c_str());
  std::remove(block_file.c_str());
#endif
}

TEST_F(InterposeTest, SqliteConnectionMutexContentionAtSqliteFrames) {
  const std::string program = LOCKPROF_SQLITE_PROGRAM_PATH;
  if (program.empty()) GTEST_SKIP() << "libsqlite3-dev is not installed";
  const int port = FreePort();
  Child child({program}, PreloadEnv(port, {"LOCKPROF_MUTEX_FRACTION=1"}));
  const std::string rows = child.WaitForLine("rows=", 120);
  ASSERT_EQ(Field(rows, "rows"), 500);
  const std::string file = SaveProfile(port, "mutex");
  const auto mutex = ParseProfile(lockprof::testing::ReadFile(file));
  const int64_t total = SumValues(mutex, 1);
  const int64_t at_sqlite = SumValues(mutex, 1, "sqlite3_");
  std::printf("mutex profile: %.1f ms in all, %.1f ms under sqlite3_* frames\n", total / 1e6,
              at_sqlite / 1e6);
  EXPECT_GT(at_sqlite, 0);
  EXPECT_GT(double(at_sqlite), 0.9 * double(total));
  const std::string top = GoPprof("-top -cum " + file);
  EXPECT_NE(top.find("sqlite3_exec"), std::string::npos) << top;
  std::remove(file.c_str());
}

TEST_F(InterposeTest, XzWithFourThreadsCompletesAndUploadsAProfile) {
  if (RunCommand("command -v xz").empty()) GTEST_SKIP() << "xz-utils is not installed";
  lockprof::testing::Receiver receiver;
  const std::string dir = receiver.dir();
  // 8 MiB of compressible text: 16 blocks for four threads.
  RunCommand("seq 1 1200000 > " + dir + "/in.txt");
  int status = -1;
  const std::string env = std::string("LD_PRELOAD=") + LOCKPROF_PRELOAD_PATH +
                          " LOCKPROF_PYROSCOPE_URL=" + receiver.url() +
                          " LOCKPROF_MUTEX_FRACTION=1 LOCKPROF_BLOCK_RATE=1 ";
  RunCommand(env + "xz -1 -T4 --block-size=512KiB -c " + dir + "/in.txt > " + dir + "/in.xz",
             &status);
  ASSERT_EQ(status, 0);
  RunCommand("xz -dc " + dir + "/in.xz | cmp - " + dir + "/in.txt", &status);
  EXPECT_EQ(status, 0) << "xz's output does not decompress to its input";
  // The last interval is uploaded at exit: block waits of xz's threads.
  int64_t block_ns = 0;
  for (const auto& u : receiver.Uploads("block")) {
    block_ns += SumValues(ParseProfile(lockprof::testing::ReadFile(u.profile_path)), 1, "");
  }
  std::printf("xz -T4: %.1f ms of waits in the uploaded block profiles\n", block_ns / 1e6);
  EXPECT_GT(block_ns, 0);
}

// A short-lived program run under LD_PRELOAD with Pyroscope unreachable (a
// script's every command, since children inherit LD_PRELOAD): its exit pays
// one failed attempt per profile, not the shutdown deadline's 5 s of retries
// (a three-command script took 15 s); and a program that recorded nothing
// sends nothing at exit.
TEST_F(InterposeTest, AnExitDoesNotWaitOutAnUnreachableServer) {
  int port;
  {
    lockprof::testing::Receiver gone;  // Its port, free again once it stopped.
    port = gone.port();
  }
  const std::string env = std::string("LD_PRELOAD=") + LOCKPROF_PRELOAD_PATH +
                          " LOCKPROF_PYROSCOPE_URL=http://127.0.0.1:" + std::to_string(port) + " ";
  const auto start = std::chrono::steady_clock::now();
  int status = -1;
  const std::string out = RunCommand(env + "sh -c '/bin/true; /bin/true; /bin/true' 2>&1", &status);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status, 0) << out;
  EXPECT_LT(took, std::chrono::seconds(3)) << out;

  lockprof::testing::Receiver receiver;
  RunCommand(std::string("LD_PRELOAD=") + LOCKPROF_PRELOAD_PATH +
                 " LOCKPROF_PYROSCOPE_URL=" + receiver.url() + " /bin/true",
             &status);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(receiver.Requests().size(), 0u);
}

// Every profile at rate 1, so that every release of the statistics mutex
// (inside the allocator's) takes the interposer's slow path, which names the
// lock the first time: the name must not be copied with the program's
// malloc, whose mutex this thread holds. Lock-order checking on: the edge
// from the allocator's mutex to the statistics mutex is new inside the
// allocator, and the program's one inversion is reported inside it.
TEST_F(InterposeTest, ProgramWithItsOwnAllocatorRunsToTheEnd) {
  int status = -1;
  const std::string out = RunCommand(std::string("LD_PRELOAD=") + LOCKPROF_PRELOAD_PATH +
                                         " LOCKPROF_MUTEX_FRACTION=1 LOCKPROF_BLOCK_RATE=1"
                                         " LOCKPROF_HOLD_RATE=1 LOCKPROF_LOCK_ORDER=report " +
                                         LOCKPROF_ALLOCATOR_PROGRAM_PATH + " 2>&1",
                                     &status);
  EXPECT_EQ(status, 0) << "deadlocked (SIGALRM) or failed: " << out;
  EXPECT_NE(out.find("done: "), std::string::npos) << out;
  EXPECT_EQ(lockprof::testing::CountOf(out,
                                       "lock-order inversion (potential deadlock): "
                                       "\"(anonymous namespace)::g_stats_mu\" -> \"g_alloc_mu\" "
                                       "-> \"(anonymous namespace)::g_stats_mu\""),
            1u)
      << out;
}

// Two copies of lockprof, both asked to profile absl::Mutex: the preload
// library's (at start) and the program's own (from main). Abseil keeps one
// tracer, and Debian's (a debug build) aborted the program at the second
// registration; the later copy now says so and leaves it to the first.
TEST_F(InterposeTest, TwoCopiesOfLockprofRegisterAbseilsTracerOnce) {
  // The program's symbols exported too (-rdynamic): the preload library's
  // references to its flag then bind to the program's.
  for (const char* program :
       {LOCKPROF_ABSL_TWO_COPIES_PATH, LOCKPROF_ABSL_TWO_COPIES_EXPORTED_PATH}) {
    int status = -1;
    const std::string out = RunCommand(std::string("LD_PRELOAD=") + LOCKPROF_PRELOAD_PATH +
                                           " LOCKPROF_ABSL_MUTEXES=1 " + program + " 2>&1",
                                       &status);
    EXPECT_EQ(status, 0) << program << ": " << out;
    EXPECT_NE(out.find("ok 20000"), std::string::npos) << out;
    EXPECT_EQ(lockprof::testing::CountOf(out, "absl::Mutex is profiled by another copy"), 1u)
        << out;
    // Alone, the program registers as it always did, and says nothing.
    const std::string alone =
        RunCommand(std::string("env -u LD_PRELOAD ") + program + " 2>&1", &status);
    EXPECT_EQ(status, 0) << alone;
    EXPECT_EQ(alone, "ok 20000\n");
  }
}

// A plugin unloaded right after a thread released a mutex in its data:
// that thread names the lock after its release, reading the plugin's image
// and the loader's record of it, which the unload frees. The unload now
// waits for a naming under way. Before: SIGSEGV within a few seconds.
TEST_F(InterposeTest, APluginUnloadedRightAfterAReleaseIsNeverRead) {
  int status = -1;
  const std::string out = RunCommand(std::string("LD_PRELOAD=") + LOCKPROF_PRELOAD_PATH + " " +
                                         LOCKPROF_DLCLOSE_RACE_PATH + " " +
                                         LOCKPROF_LOCKING_PLUGIN_PATH + " 50000 2>&1",
                                     &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "50000 rounds\n");
}

}  // namespace
