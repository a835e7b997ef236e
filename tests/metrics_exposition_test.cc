// /metrics as a scraper reads it whatever happens in the process: numbers
// with a '.' under any locale, and counters that never go down.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "lockprof/agent/record/record.h"
#include "lockprof/agent/tables/thread_cells.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::agent::EventTags;
using lockprof::testing::RunCommand;
using lockprof::testing::ScrapeMetrics;
using lockprof::testing::WriteTempFile;

void Block(const EventTags& tags, int64_t wait_ns) {
  lockprof::agent::StackTrace stack;
  lockprof::agent::CaptureStack(__builtin_frame_address(0), &stack);
  lockprof::agent::RecordBlock(wait_ns, tags, stack);
}

class MetricsExpositionTest : public ::testing::Test {
 protected:
  lockprof::testing::ScopedRates rates_;
};

// A host program that calls setlocale(LC_ALL, "") under a LANG whose decimal
// point is a comma (de_DE, fr_FR, ru_RU) still gets numbers Prometheus
// reads: "1.6e-05", not "1,6e-05". The locale is compiled here, from the
// Debian package `locales` (tools/deps.sh).
TEST_F(MetricsExpositionTest, NumbersIgnoreTheProgramsLocale) {
  const std::string dir = ::testing::TempDir() + "lockprof-locale";
  int status;
  const std::string made = RunCommand(
      "mkdir -p " + dir + " && localedef -i de_DE -f UTF-8 " + dir + "/de_DE.UTF-8 2>&1", &status);
  ASSERT_EQ(status, 0) << made;
  setenv("LOCPATH", dir.c_str(), 1);
  ASSERT_NE(setlocale(LC_ALL, "de_DE.UTF-8"), nullptr);
  char comma[16];
  std::snprintf(comma, sizeof comma, "%.1f", 1.5);
  EXPECT_STREQ(comma, "1,5");  // The locale is in force.
  Block(EventTags{"metrics.locale"}, 16000);
  const std::string m = ScrapeMetrics();
  setlocale(LC_ALL, "C");
  unsetenv("LOCPATH");
  EXPECT_NE(m.find("lockprof_lock_wait_seconds_bucket{lock=\"metrics.locale\",le=\"1.6e-05\"} 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("lockprof_lock_wait_seconds_sum{lock=\"metrics.locale\"} 1.6e-05\n"),
            std::string::npos)
      << m;
  const std::string out =
      RunCommand("promtool check metrics < " + WriteTempFile(m) + " 2>&1", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "");
}

// Every counter and bucket as name{labels} -> value.
std::map<std::string, double> Series(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const size_t space = line.rfind(' ');
    if (line.empty() || line[0] == '#' || space == std::string::npos) continue;
    const std::string name = line.substr(0, space);
    if (name.find("_total") != std::string::npos || name.find("_bucket") != std::string::npos ||
        name.find("_count") != std::string::npos || name.find("_sum") != std::string::npos) {
      out[name] = std::stod(line.substr(space + 1));
    }
  }
  return out;
}

// A thread stopped in the middle of moving a cell's values (preempted
// there, in production) leaves them in neither the cell nor its target, and
// a scrape that gives up waiting for it misses them. Prometheus reads a
// counter that went down as a reset; /metrics never writes one lower than
// it wrote before.
std::atomic<bool> g_hold_moves{false};
std::atomic<int> g_moves_held{0};
void HoldMove() {
  if (!g_hold_moves.load()) return;
  g_moves_held.fetch_add(1);
  while (g_hold_moves.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST_F(MetricsExpositionTest, CountersNeverGoDownWhileAMoveIsStuck) {
  lockprof::agent::SetCellMoveHookForTesting(HoldMove);
  std::atomic<int> round{0};
  std::atomic<bool> stop{false};
  // One thread records into more targets than it has cells, so it keeps
  // moving cells from one target to another.
  std::thread recorder([&] {
    for (int i = 0; !stop.load(); ++i) {
      const std::string name = "metrics.move." + std::to_string(i % 12);
      Block(EventTags{name.c_str()}, 1000 + i % 7);
      if (i % 997 == 0) std::this_thread::yield();
    }
  });
  int decreases = 0;
  for (int r = 0; r < 20; ++r) {
    const std::map<std::string, double> before = Series(ScrapeMetrics());
    const int held = g_moves_held.load();
    g_hold_moves = true;
    while (g_moves_held.load() == held) std::this_thread::yield();
    const std::map<std::string, double> during = Series(ScrapeMetrics());  // Gives up.
    g_hold_moves = false;
    for (const auto& [series, value] : before) {
      auto it = during.find(series);
      if (it == during.end() || it->second < value) {
        ++decreases;
        ADD_FAILURE() << series << ": " << value << " then "
                      << (it == during.end() ? -1 : it->second);
      }
    }
  }
  stop = true;
  recorder.join();
  lockprof::agent::SetCellMoveHookForTesting(nullptr);
  EXPECT_EQ(decreases, 0);
}

}  // namespace
