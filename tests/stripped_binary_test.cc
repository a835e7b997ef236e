// A stripped release binary still gives a useful profile: where lockprof
// finds no names, the mapping says so (has_functions false) and keeps its
// build id, so `go tool pprof <unstripped binary> profile` (or a debug file
// uploaded to Pyroscope) names the addresses; where the debug information
// was shipped apart (objcopy --only-keep-debug, .gnu_debuglink), lockprof
// finds it and names them itself.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "test_util.h"

namespace {

using lockprof::testing::Child;
using lockprof::testing::GoPprof;
using lockprof::testing::HttpGet;
using lockprof::testing::ParseProfile;
using lockprof::testing::PortFromLine;
using lockprof::testing::RunCommand;
using lockprof::testing::TopFunction;
using lockprof::testing::WriteTempFile;
namespace pb = perftools::profiles;

std::string Trimmed(std::string s) {
  s.erase(s.find_last_not_of('\n') + 1);
  return s;
}

class StrippedBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = Trimmed(RunCommand("mktemp -d")); }
  void TearDown() override {
    demo_.reset();
    RunCommand("rm -rf " + dir_);
  }

  // Makes `name` in the test's directory with `objcopy_args` applied to the
  // demo, checking that objcopy succeeded.
  std::string Objcopy(const std::string& objcopy_args, const std::string& name) {
    const std::string out = dir_ + "/" + name;
    int status = -1;
    const std::string log = RunCommand("cd " + dir_ + " && objcopy " + objcopy_args + " " +
                                           LOCKPROF_DEMO_PATH + " " + name + " 2>&1",
                                       &status);
    EXPECT_EQ(status, 0) << log;
    return out;
  }

  // Runs `binary` as the demo for a few seconds and returns its mutex
  // profile (the gzipped bytes, also written to `profile_path_`).
  std::string MutexProfileOf(const std::string& binary) {
    demo_ = std::make_unique<Child>(std::vector<std::string>{binary, "--addr=127.0.0.1:0",
                                                             "--duration=120", "--readers=4",
                                                             "--writers=2", "--slow-ms=20"});
    const std::string line = demo_->WaitForLine("admin endpoint:");
    const int port = PortFromLine(line);
    EXPECT_GT(port, 0) << line;
    std::this_thread::sleep_for(std::chrono::seconds(3));
    int status = 0;
    const std::string body = HttpGet(port, "/debug/pprof/mutex", &status);
    EXPECT_EQ(status, 200);
    demo_.reset();
    profile_path_ = WriteTempFile(body, ".pb.gz");
    return body;
  }

  // The mapping of the file named `path` in `p`; fails the test if none.
  static const pb::Mapping* MappingOf(const pb::Profile& p, const std::string& path) {
    for (const pb::Mapping& m : p.mapping()) {
      if (p.string_table(int(m.filename())) == path) return &m;
    }
    ADD_FAILURE() << "no mapping for " << path;
    return nullptr;
  }

  // The GNU build id of `path`, as readelf prints it.
  static std::string BuildIdOf(const std::string& path) {
    return Trimmed(RunCommand("readelf -n " + path + " | sed -n 's/.*Build ID: //p'"));
  }

  std::string dir_;
  std::string profile_path_;
  std::unique_ptr<Child> demo_;
};

TEST_F(StrippedBinaryTest, StrippedBinaryIsNamedByPprofFromTheUnstrippedOne) {
  const std::string stripped = Objcopy("--strip-all", "demo-stripped");
  const pb::Profile p = ParseProfile(MutexProfileOf(stripped));
  ASSERT_GT(p.sample_size(), 0);
  const pb::Mapping* m = MappingOf(p, stripped);
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->has_functions()) << "a mapping that claims functions is never symbolized";
  const std::string build_id = BuildIdOf(LOCKPROF_DEMO_PATH);
  ASSERT_EQ(build_id.size(), 40u) << build_id;
  EXPECT_EQ(p.string_table(int(m->build_id())), build_id);
  EXPECT_EQ(BuildIdOf(stripped), build_id) << "objcopy kept the build id";

  // Without the binary: addresses only, and no wrong name.
  int status = -1;
  const std::string bare = GoPprof("-lines -top -sample_index=delay " + profile_path_, &status);
  ASSERT_EQ(status, 0) << bare;
  EXPECT_EQ(bare.find("tools/demo/"), std::string::npos) << bare;
  // With the unstripped binary, go tool pprof reads its lines (Go's own
  // DWARF reader gives C++ code lines, not function names) ...
  const std::string lines = GoPprof(
      "-lines -top -sample_index=delay " + std::string(LOCKPROF_DEMO_PATH) + " " + profile_path_,
      &status);
  ASSERT_EQ(status, 0) << lines;
  EXPECT_NE(lines.find("tools/demo/main.cc"), std::string::npos) << lines;
  // ... and binutils, which the standalone pprof and debug-info services
  // run, names the heaviest sample's frames from the mapping alone: the
  // address less the mapping's start plus its file offset is the address in
  // the file (the executable segment's address equals its offset). The
  // leaf may be lockprof's own unlock (the sanitizer builds do not inline
  // it), which lockprof trims when it names frames itself.
  const pb::Sample* heaviest = &p.sample(0);
  for (const pb::Sample& s : p.sample()) {
    if (s.value(1) > heaviest->value(1)) heaviest = &s;
  }
  std::string addresses;
  for (uint64_t id : heaviest->location_id()) {
    const pb::Location& loc = p.location(int(id - 1));
    if (loc.mapping_id() != m->id()) continue;
    char hex[32];
    snprintf(hex, sizeof hex, " 0x%llx",
             static_cast<unsigned long long>(loc.address() - m->memory_start() + m->file_offset()));
    addresses += hex;
  }
  ASSERT_FALSE(addresses.empty());
  const std::string names =
      RunCommand(std::string("addr2line -f -C -i -e ") + LOCKPROF_DEMO_PATH + addresses);
  EXPECT_NE(names.find("demo::Cache::Set"), std::string::npos) << addresses << "\n" << names;
}

TEST_F(StrippedBinaryTest, DebugFileNextToTheBinaryIsFoundByItsDebuglink) {
  Objcopy("--only-keep-debug", "demo.debug");
  const std::string linked = Objcopy("--strip-all --add-gnu-debuglink=demo.debug", "demo-linked");
  const pb::Profile p = ParseProfile(MutexProfileOf(linked));
  ASSERT_GT(p.sample_size(), 0);
  const pb::Mapping* m = MappingOf(p, linked);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->has_functions());
  EXPECT_TRUE(m->has_line_numbers());
  int status = -1;
  const std::string top = GoPprof("-top -sample_index=delay " + profile_path_, &status);
  ASSERT_EQ(status, 0) << top;
  EXPECT_NE(TopFunction(top).find("demo::Cache::Set"), std::string::npos) << top;
}

}  // namespace
