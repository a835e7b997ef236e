// The names of held locks, as readers of the lock records list them: the
// held-locks page, stall reports and the holds of exited threads. A name may
// die with its lock (a const array member of the object holding it), or
// with the plugin whose string it is, as soon as the holder lets go: a
// reader copies it when it reads the record, not later while it formats
// (symbolizing stacks takes milliseconds), and a name that can no longer be
// read is listed unnamed rather than crashing the process.
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/primitives/mutex.h"
#include "route_get.h"
#include "test_util.h"

namespace lockprof {
namespace {

// A lock named by an array member of the object that holds it.
struct Named {
  explicit Named(const char* n) : mu(AsConst(name)) { std::strncpy(name, n, sizeof name - 1); }
  static const char (&AsConst(char (&a)[40]))[40] { return a; }
  char name[40] = {};
  Mutex mu;
};

// Holds `mu` on a thread of its own until Release().
class Holder {
 public:
  explicit Holder(Mutex* mu)
      : thread_([this, mu]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          mu->lock();
          held_ = true;
          while (!release_) std::this_thread::yield();
          mu->unlock();
        }) {
    while (!held_) std::this_thread::yield();
  }
  void Release() {
    release_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> held_{false}, release_{false};
  std::thread thread_;
};

class HeldNamesTest : public ::testing::Test {
 protected:
  void SetUp() override { SetHeldLockTracking(true); }
  void TearDown() override { SetHeldLockTracking(false); }
  // No sampled hold, whose unlock would read the name itself.
  testing::ScopedRates rates_{0, 0, 0};
};

TEST_F(HeldNamesTest, ARecordsCopyKeepsTheNameItHadWhenRead) {
  auto named = std::make_unique<Named>("held.member");
  Holder holder(&named->mu);
  const std::vector<agent::ThreadLocksView> views = agent::SnapshotThreadLocks();
  holder.Release();
  // The object's next use (or the allocator's, once it is freed) rewrites
  // the bytes.
  std::memset(named->name, 'X', sizeof named->name - 1);
  int found = 0;
  for (const agent::ThreadLocksView& t : views) {
    for (const agent::LockView& h : t.held) {
      if (h.lock != &named->mu) continue;
      ++found;
      EXPECT_EQ(std::string(h.name), "held.member");
    }
  }
  EXPECT_EQ(found, 1);
}

TEST_F(HeldNamesTest, ANameNoLongerMappedIsListedUnnamed) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* mapped = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  std::strcpy(static_cast<char*>(mapped), "held.unmapped");
  // As a plugin's string is, once the plugin is unloaded.
  Mutex mu(*static_cast<const char(*)[40]>(mapped));
  Holder holder(&mu);
  ASSERT_NE(testing::RouteGet("/debug/lockprof/held").find("held.unmapped"), std::string::npos);
  ASSERT_EQ(munmap(mapped, page), 0);
  const std::string text = testing::RouteGet("/debug/lockprof/held");
  const std::string json = testing::RouteGet("/debug/lockprof/held", "format=json");
  holder.Release();
  EXPECT_NE(text.find("(unnamed)"), std::string::npos) << text;
  EXPECT_NE(json.find("(unnamed)"), std::string::npos) << json;
}

}  // namespace
}  // namespace lockprof
