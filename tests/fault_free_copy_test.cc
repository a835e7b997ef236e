// agent/base/fault_free_copy.h: copying a name that may be unmapped while it
// is read (a lock's name on the held-locks page, a symbol's name of a library
// being unloaded) keeps what can be read and never faults.
#include "lockprof/agent/base/fault_free_copy.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "lockprof/agent/base/utf8.h"

namespace lockprof::agent {
namespace {

TEST(FaultFreeCopyTest, CopiesANameAsKeepNameDoes) {
  char out[48];
  CopyNameFaultFree("cache.mu", out, sizeof out);
  EXPECT_STREQ(out, "cache.mu");
  std::string long_name;
  for (int i = 0; i < 100; ++i) long_name += "\xc3\xa9";  // Two bytes each.
  char kept[48];
  KeepName(long_name.c_str(), kept, sizeof kept);
  CopyNameFaultFree(long_name.c_str(), out, sizeof out);
  EXPECT_STREQ(out, kept);
  EXPECT_EQ(std::strlen(out), 46u);  // Cut between characters.
}

TEST(FaultFreeCopyTest, ANameWhosePagesAreGoneIsCutWhereTheyBegin) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  auto* mapped = static_cast<char*>(
      mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mapped, MAP_FAILED);
  char* tail = mapped + page - 5;
  std::memcpy(tail, "abcde", 5);  // Its terminator would be on the next page.
  ASSERT_EQ(munmap(mapped + page, page), 0);
  char out[4096];
  CopyNameFaultFree(tail, out, sizeof out);
  EXPECT_STREQ(out, "abcde");
  ASSERT_EQ(munmap(mapped, page), 0);
  CopyNameFaultFree(tail, out, sizeof out);
  EXPECT_STREQ(out, "");
}

}  // namespace
}  // namespace lockprof::agent
