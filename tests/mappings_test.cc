#include "lockprof/agent/symbolize/mappings.h"

#include <gnu/libc-version.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace lockprof::agent {
namespace {

__attribute__((noinline)) int CodeInThisBinary(int x) {
  asm volatile("# CodeInThisBinary" : "+r"(x));
  return x + 1;
}

bool IsLowerHex(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

TEST(MappingsTest, SortedExecutableAndDisjoint) {
  const std::vector<Mapping> maps = ReadExecutableMappings();
  ASSERT_FALSE(maps.empty());
  for (size_t i = 0; i < maps.size(); ++i) {
    EXPECT_LT(maps[i].start, maps[i].limit);
    if (i > 0) {
      EXPECT_LE(maps[i - 1].limit, maps[i].start);
    }
    EXPECT_EQ(maps[i].path.find(" (deleted)"), std::string::npos);
    if (!maps[i].build_id.empty()) {
      EXPECT_TRUE(IsLowerHex(maps[i].build_id)) << maps[i].build_id;
    }
  }
}

TEST(MappingsTest, OwnCodeIsInMainExecutableWithBuildId) {
  const std::vector<Mapping> maps = ReadExecutableMappings();
  const uintptr_t pc = reinterpret_cast<uintptr_t>(&CodeInThisBinary);
  const int i = FindMapping(maps, pc);
  ASSERT_GE(i, 0);
  char* exe = realpath("/proc/self/exe", nullptr);
  ASSERT_NE(exe, nullptr);
  EXPECT_EQ(maps[i].path, exe);
  free(exe);
  // Debian's gcc links with --build-id (20-byte SHA-1) by default.
  EXPECT_TRUE(IsLowerHex(maps[i].build_id)) << maps[i].build_id;
  EXPECT_GE(maps[i].build_id.size(), 16u);
  EXPECT_EQ(maps[i].build_id.size() % 2, 0u);
  EXPECT_EQ(maps[i].build_id, BuildIdForAddress(pc));
  EXPECT_LE(maps[i].start, pc);
  EXPECT_LT(pc, maps[i].limit);
}

TEST(MappingsTest, LibcMappingFound) {
  const std::vector<Mapping> maps = ReadExecutableMappings();
  // gnu_get_libc_version is not intercepted by sanitizers: it is libc's own.
  const int i = FindMapping(maps, reinterpret_cast<uintptr_t>(&gnu_get_libc_version));
  ASSERT_GE(i, 0);
  EXPECT_NE(maps[i].path.find("libc.so"), std::string::npos) << maps[i].path;
  EXPECT_TRUE(IsLowerHex(maps[i].build_id)) << maps[i].build_id;
}

TEST(MappingsTest, VdsoKeepsItsName) {
  const uintptr_t vdso = getauxval(AT_SYSINFO_EHDR);
  if (vdso == 0) GTEST_SKIP() << "no vDSO";
  const std::vector<Mapping> maps = ReadExecutableMappings();
  bool found = false;
  for (const Mapping& m : maps) found |= m.path == "[vdso]";
  EXPECT_TRUE(found);
}

TEST(MappingsTest, FindMappingBoundaries) {
  std::vector<Mapping> maps(3);
  maps[0].start = 0x1000, maps[0].limit = 0x2000;
  maps[1].start = 0x2000, maps[1].limit = 0x3000;
  maps[2].start = 0x5000, maps[2].limit = 0x6000;
  EXPECT_EQ(FindMapping(maps, 0), -1);
  EXPECT_EQ(FindMapping(maps, 0xfff), -1);
  EXPECT_EQ(FindMapping(maps, 0x1000), 0);
  EXPECT_EQ(FindMapping(maps, 0x1fff), 0);
  EXPECT_EQ(FindMapping(maps, 0x2000), 1);
  EXPECT_EQ(FindMapping(maps, 0x3000), -1);
  EXPECT_EQ(FindMapping(maps, 0x4fff), -1);
  EXPECT_EQ(FindMapping(maps, 0x5fff), 2);
  EXPECT_EQ(FindMapping(maps, 0x6000), -1);
  EXPECT_EQ(FindMapping({}, 0x1000), -1);
  EXPECT_EQ(FindMapping(ReadExecutableMappings(), 16), -1);
}

TEST(MappingsTest, BuildIdForUnknownAddressIsEmpty) { EXPECT_EQ(BuildIdForAddress(16), ""); }

}  // namespace
}  // namespace lockprof::agent
