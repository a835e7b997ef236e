// lockprof's pprof encoding, checked against the rules pprof enforces and
// against profiles written by Go's own runtime (tests/testdata).
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

namespace pb = perftools::profiles;
using lockprof::testing::ParseProfile;

ABSL_ATTRIBUTE_NOINLINE void EncoderTestSection(lockprof::Mutex& mu) {
  lockprof::MutexLock lock(&mu);
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

// At fraction 1 and block rate 1, as Go's profiles in testdata/ were taken
// (the period fields compare equal); the rates are restored on return.
pb::Profile Ours(const char* name) {
  lockprof::testing::ScopedRates rates(1, 1, lockprof::testing::ScopedRates::kKeep);
  static bool contended = [] {
    static lockprof::Mutex mu{"encoder.test"};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([] {
        for (int i = 0; i < 20; ++i) EncoderTestSection(mu);
      });
    }
    for (auto& t : threads) t.join();
    return true;
  }();
  (void)contended;
  return lockprof::testing::FetchProfile(name);
}

pb::Profile Go(const char* file) {
  std::ifstream in(std::string(LOCKPROF_SOURCE_DIR) + "/tests/testdata/" + file, std::ios::binary);
  std::stringstream data;
  data << in.rdbuf();
  return ParseProfile(data.str());
}

std::string Str(const pb::Profile& p, int64_t i) { return p.string_table(int(i)); }

std::vector<std::string> TypeStrings(const pb::Profile& p) {
  std::vector<std::string> out;
  for (const auto& t : p.sample_type()) out.push_back(Str(p, t.type()) + "/" + Str(p, t.unit()));
  out.push_back("period:" + Str(p, p.period_type().type()) + "/" + Str(p, p.period_type().unit()) +
                "/" + std::to_string(p.period()));
  out.push_back("default:" + std::to_string(p.default_sample_type()));
  return out;
}

TEST(PprofEncoderTest, TypesAndPeriodMatchGo) {
  EXPECT_EQ(TypeStrings(Ours("mutex")), TypeStrings(Go("go_mutex.pb.gz")));
  EXPECT_EQ(TypeStrings(Ours("block")), TypeStrings(Go("go_block.pb.gz")));
}

TEST(PprofEncoderTest, ValidAsPprofRequires) {
  for (const char* name : {"mutex", "block"}) {
    pb::Profile p = Ours(name);
    ASSERT_GT(p.sample_size(), 0) << name;
    EXPECT_EQ(p.string_table(0), "");
    EXPECT_GT(p.time_nanos(), 0);
    EXPECT_EQ(p.duration_nanos(), 0);
    std::set<uint64_t> mapping_ids, location_ids, function_ids, addresses;
    for (const auto& m : p.mapping()) {
      EXPECT_NE(m.id(), 0u);
      EXPECT_TRUE(mapping_ids.insert(m.id()).second);
      // A mapping claims functions exactly when every location in it is
      // named (pprof then needs no binary); this test's own code always is.
      bool located = false, all_named = true;
      for (const auto& l : p.location()) {
        if (l.mapping_id() != m.id()) continue;
        located = true;
        all_named &= l.line_size() > 0;
      }
      EXPECT_EQ(m.has_functions(), located && all_named) << Str(p, m.filename());
      if (Str(p, m.filename()).find("pprof_encoder_test") != std::string::npos) {
        EXPECT_TRUE(m.has_functions());
      }
    }
    for (const auto& f : p.function()) {
      EXPECT_NE(f.id(), 0u);
      EXPECT_TRUE(function_ids.insert(f.id()).second);
    }
    for (const auto& l : p.location()) {
      EXPECT_NE(l.id(), 0u);
      EXPECT_TRUE(location_ids.insert(l.id()).second);
      EXPECT_NE(l.address(), 0u);
      EXPECT_TRUE(addresses.insert(l.address()).second) << "addresses must be unique";
      if (l.mapping_id() != 0) {
        EXPECT_TRUE(mapping_ids.count(l.mapping_id()));
        const auto& m = p.mapping(int(l.mapping_id() - 1));
        EXPECT_GE(l.address(), m.memory_start());
        EXPECT_LT(l.address(), m.memory_limit());
      }
      for (const auto& line : l.line()) EXPECT_TRUE(function_ids.count(line.function_id()));
    }
    for (const auto& s : p.sample()) {
      EXPECT_EQ(s.value_size(), p.sample_type_size());
      for (uint64_t id : s.location_id()) EXPECT_TRUE(location_ids.count(id));
    }
  }
}

TEST(PprofEncoderTest, NamesFilesAndBuildIdsNeedNoBinary) {
  pb::Profile p = Ours("mutex");
  bool found = false;
  for (const auto& f : p.function()) {
    if (Str(p, f.name()) != "(anonymous namespace)::EncoderTestSection") continue;
    found = true;
    EXPECT_EQ(Str(p, f.system_name()).rfind("_Z", 0), 0u) << "mangled system_name";
    EXPECT_NE(Str(p, f.filename()).find("pprof_encoder_test.cc"), std::string::npos);
  }
  EXPECT_TRUE(found);
  bool exe_has_build_id = false;
  for (const auto& m : p.mapping()) {
    if (Str(p, m.filename()).find("pprof_encoder_test") != std::string::npos) {
      exe_has_build_id = Str(p, m.build_id()).size() >= 16;
    }
  }
  EXPECT_TRUE(exe_has_build_id);
}

TEST(PprofEncoderTest, LeafIsTheUsersFunctionAndLockIsLabelled) {
  pb::Profile p = Ours("mutex");
  bool found = false;
  for (const auto& s : p.sample()) {
    auto names = lockprof::testing::StackFunctions(p, s);
    if (names.empty() || names[0] != "(anonymous namespace)::EncoderTestSection") continue;
    found = true;
    ASSERT_EQ(s.label_size(), 1);
    EXPECT_EQ(Str(p, s.label(0).key()), "lock");
    EXPECT_EQ(Str(p, s.label(0).str()), "encoder.test");
  }
  EXPECT_TRUE(found);
}

}  // namespace
