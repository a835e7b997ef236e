// The symbolizer against libraries that change under it: one unloaded and
// another loaded at its addresses, and one whose units come from two
// compilers, only one of which lists its code in .debug_aranges.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lockprof/agent/symbolize/symbolizer.h"

namespace lockprof::agent {
namespace {

// The frames for the code at `fn` + 1 (inside the function, as a return
// address minus one is).
std::vector<SourceFrame> FramesAt(Symbolizer& symbolizer, void* fn) {
  return symbolizer.Symbolize(reinterpret_cast<uintptr_t>(fn) + 1);
}

std::string Names(const std::vector<SourceFrame>& frames) {
  std::string out;
  for (const SourceFrame& f : frames) out += f.function + " (" + f.file + ") ";
  return out;
}

// The loader puts the second library where the first was: the answer is the
// second's function, not the first's name from the cache or from the
// module read before the unload.
TEST(SymbolizerUnitsTest, ALibraryLoadedWhereAnotherWasGetsItsOwnNames) {
  Symbolizer symbolizer;
  void* a = dlopen(LOCKPROF_TEST_RELOAD_A, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(a, nullptr) << dlerror();
  void* alpha = dlsym(a, "alpha_function");
  ASSERT_NE(alpha, nullptr);
  std::vector<SourceFrame> frames = FramesAt(symbolizer, alpha);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().function, "alpha_function");
  ASSERT_EQ(dlclose(a), 0);

  void* b = dlopen(LOCKPROF_TEST_RELOAD_B, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(b, nullptr) << dlerror();
  void* beta = dlsym(b, "beta_function");
  ASSERT_NE(beta, nullptr);
  // The case this test is for; the loader has always reused the hole here.
  EXPECT_EQ(beta, alpha) << "the second library was loaded elsewhere";
  frames = FramesAt(symbolizer, beta);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().function, "beta_function") << Names(frames);
  EXPECT_NE(frames.back().file.find("reload_b.cc"), std::string::npos) << Names(frames);
  dlclose(b);
}

// A library of GCC and clang objects: clang code is named from its own
// unit (with file, line and its inlined call), not from the GCC unit that
// .debug_aranges' lookup answers for addresses it does not list.
TEST(SymbolizerUnitsTest, CodeOfAUnitMissingFromArangesHasItsLines) {
  Symbolizer symbolizer;
  void* lib = dlopen(LOCKPROF_TEST_MIXED_UNITS, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  void* gcc_half = dlsym(lib, "gcc_part_function_1");
  void* clang_half = dlsym(lib, "clang_half_function");
  ASSERT_NE(dlsym(lib, "gcc_part_function_2"), nullptr);
  ASSERT_NE(gcc_half, nullptr);
  ASSERT_NE(clang_half, nullptr);
  std::vector<SourceFrame> frames = FramesAt(symbolizer, gcc_half);
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(frames.back().file.find("mixed_gcc.cc"), std::string::npos) << Names(frames);

  frames = FramesAt(symbolizer, clang_half);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().function, "clang_half_function") << Names(frames);
  EXPECT_NE(frames.back().file.find("mixed_clang.cc"), std::string::npos) << Names(frames);
  EXPECT_GT(frames.back().line, 0) << Names(frames);
  dlclose(lib);
}

}  // namespace
}  // namespace lockprof::agent
