#include "lockprof/agent/symbolize/symbolizer.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "lockprof/agent/symbolize/mappings.h"

namespace lockprof::agent {
namespace {

// The functions under test carry distinct asm comments so that identical
// code folding cannot merge them (and give one the other's name).

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

constexpr int kSomeFuncLine = __LINE__ + 1;
__attribute__((noinline)) int SomeFunc(int x) {
  asm volatile("" : "+r"(x));  // Keeps the body from being folded away.
  return x * 2 + 1;
}

// The address inside the call instruction in the caller.
__attribute__((noinline)) uintptr_t ReturnPc() {
  uintptr_t pc = reinterpret_cast<uintptr_t>(__builtin_return_address(0)) - 1;
  asm volatile("" : "+r"(pc));
  return pc;
}

constexpr int kCallerLine = __LINE__ + 3;
__attribute__((noinline)) uintptr_t CallerOfReturnPc() {
  // The asm after the call keeps it from becoming a tail call.
  uintptr_t pc = ReturnPc();
  asm volatile("# CallerOfReturnPc" : "+r"(pc));
  return pc;
}

}  // namespace

// Out of the anonymous namespace so that the name has no "(anonymous
// namespace)" part.
namespace sym_test_ns {
class Widget {
 public:
  // The pc of a call inside the method.
  __attribute__((noinline)) uintptr_t Method(int x) const;
  int base = 3;
};
uintptr_t Widget::Method(int x) const {
  uintptr_t pc = ReturnPc() + x * base;
  asm volatile("# Method" : "+r"(pc));
  return pc;
}
}  // namespace sym_test_ns

namespace {

constexpr int kInlinedDeclLine = __LINE__ + 1;
inline __attribute__((always_inline)) uintptr_t InlinedCallee() {
  return ReturnPc();  // kInlinedDeclLine + 1
}

constexpr int kOuterCallLine = __LINE__ + 2;
__attribute__((noinline)) uintptr_t OuterOfInlined() {
  uintptr_t pc = InlinedCallee();
  asm volatile("# OuterOfInlined" : "+r"(pc));
  return pc;
}

TEST(SymbolizerTest, FunctionEntry) {
  const auto frames = Symbolizer::Global().Symbolize(reinterpret_cast<uintptr_t>(&SomeFunc) + 1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "lockprof::agent::(anonymous namespace)::SomeFunc");
  EXPECT_EQ(frames[0].system_name, "_ZN8lockprof5agent12_GLOBAL__N_18SomeFuncEi");
  EXPECT_TRUE(EndsWith(frames[0].file, "symbolizer_test.cc")) << frames[0].file;
  EXPECT_EQ(frames[0].file[0], '/') << frames[0].file;
  EXPECT_GE(frames[0].line, kSomeFuncLine);
  EXPECT_LE(frames[0].line, kSomeFuncLine + 3);
  EXPECT_EQ(frames[0].start_line, kSomeFuncLine);
}

TEST(SymbolizerTest, ReturnAddressGivesCallLine) {
  const auto frames = Symbolizer::Global().Symbolize(CallerOfReturnPc());
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "lockprof::agent::(anonymous namespace)::CallerOfReturnPc");
  EXPECT_TRUE(EndsWith(frames[0].file, "symbolizer_test.cc")) << frames[0].file;
  EXPECT_EQ(frames[0].line, kCallerLine);
  EXPECT_EQ(frames[0].start_line, kCallerLine - 2);
}

TEST(SymbolizerTest, InlinedFramesInnermostFirst) {
  const auto frames = Symbolizer::Global().Symbolize(OuterOfInlined());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].function, "lockprof::agent::(anonymous namespace)::InlinedCallee");
  EXPECT_EQ(frames[0].line, kInlinedDeclLine + 1);
  EXPECT_EQ(frames[0].start_line, kInlinedDeclLine);
  EXPECT_TRUE(EndsWith(frames[0].file, "symbolizer_test.cc")) << frames[0].file;
  EXPECT_EQ(frames[1].function, "lockprof::agent::(anonymous namespace)::OuterOfInlined");
  EXPECT_EQ(frames[1].line, kOuterCallLine);
  EXPECT_EQ(frames[1].start_line, kOuterCallLine - 1);
  EXPECT_TRUE(EndsWith(frames[1].file, "symbolizer_test.cc")) << frames[1].file;
}

TEST(SymbolizerTest, MethodInNamespace) {
  const sym_test_ns::Widget widget;
  const auto frames = Symbolizer::Global().Symbolize(widget.Method(0));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].function, "lockprof::agent::sym_test_ns::Widget::Method");
  EXPECT_EQ(frames[0].system_name, "_ZNK8lockprof5agent11sym_test_ns6Widget6MethodEi");
}

TEST(SymbolizerTest, Lambda) {
  auto lambda = []() __attribute__((noinline)) {
    uintptr_t pc = ReturnPc();
    asm volatile("# lambda" : "+r"(pc));
    return pc;
  };
  const auto frames = Symbolizer::Global().Symbolize(lambda());
  ASSERT_FALSE(frames.empty());
  // GCC: "...::TestBody()::{lambda()#1}::operator()"; clang: "...::TestBody()::$_0::operator()".
  EXPECT_TRUE(EndsWith(frames.back().function, "::operator()")) << frames.back().function;
  EXPECT_NE(frames.back().function.find("SymbolizerTest_Lambda_Test::TestBody()::"),
            std::string::npos)
      << frames.back().function;
  EXPECT_EQ(frames.back().function.find("const"), std::string::npos);
}

TEST(SymbolizerTest, LibcFunctionHasName) {
  // getpid lives in libc, which Debian ships without .symtab: found through
  // .dynsym (or separate debug info if installed).
  const auto frames = Symbolizer::Global().Symbolize(reinterpret_cast<uintptr_t>(&getpid) + 1);
  ASSERT_FALSE(frames.empty());
  EXPECT_NE(frames.back().function.find("getpid"), std::string::npos) << frames.back().function;
}

TEST(SymbolizerTest, UnknownPcIsEmpty) {
  EXPECT_TRUE(Symbolizer::Global().Symbolize(16).empty());
  EXPECT_TRUE(Symbolizer::Global().Symbolize(0).empty());
  EXPECT_TRUE(Symbolizer::Global().Symbolize(~uintptr_t{0} - 4096).empty());
}

TEST(SymbolizerTest, LibraryLoadedLater) {
  Symbolizer symbolizer;
  ASSERT_FALSE(symbolizer.Symbolize(CallerOfReturnPc()).empty());  // Modules read.
  // Not linked into the test, so mapped only now.
  void* lib = dlopen(LOCKPROF_TEST_DSO_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  void* fn = dlsym(lib, "lockprof_test_dso_function");
  ASSERT_NE(fn, nullptr);
  const auto frames = symbolizer.Symbolize(reinterpret_cast<uintptr_t>(fn) + 1);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().function, "lockprof_test_dso_function");
  // Left loaded: unloading is the loader's business, not this test's.
}

TEST(SymbolizerTest, CachedResultIsStable) {
  Symbolizer symbolizer;  // A private instance, freed at the end (LSan).
  const uintptr_t pc = CallerOfReturnPc();
  const auto first = symbolizer.Symbolize(pc);
  const auto second = symbolizer.Symbolize(pc);
  ASSERT_EQ(first.size(), second.size());
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first[0].function, second[0].function);
  EXPECT_EQ(first[0].line, second[0].line);
}

TEST(SymbolizerTest, ConcurrentCallers) {
  Symbolizer symbolizer;
  const uintptr_t pcs[] = {CallerOfReturnPc(), OuterOfInlined(),
                           reinterpret_cast<uintptr_t>(&SomeFunc) + 1,
                           reinterpret_cast<uintptr_t>(&getpid) + 1};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        EXPECT_FALSE(symbolizer.Symbolize(pcs[(t + i) % 4]).empty());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
}

// The main executable moved or deleted while the process runs: the test
// re-executes a copy of this binary, which moves or deletes itself and then
// symbolizes its own code.
constexpr char kChildEnv[] = "LOCKPROF_SYMBOLIZER_TEST_CHILD";

void ChildSymbolizesAfter(const std::string& action) {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  // One instance that already read the mappings, one that starts afterwards.
  Symbolizer before;
  ASSERT_TRUE(before.Symbolize(16).empty());  // Reports modules, opens nothing.
  if (action == "delete") {
    ASSERT_EQ(unlink(self), 0);
  } else {
    ASSERT_EQ(rename(self, (std::string(self) + ".moved").c_str()), 0);
  }
  const std::string now = action == "delete" ? self : std::string(self) + ".moved";
  const std::vector<Mapping> maps = ReadExecutableMappings();
  const int i = FindMapping(maps, reinterpret_cast<uintptr_t>(&SomeFunc));
  ASSERT_GE(i, 0);
  EXPECT_EQ(maps[i].path, now);  // Without " (deleted)".
  EXPECT_FALSE(maps[i].build_id.empty());
  Symbolizer after;
  for (Symbolizer* s : {&before, &after}) {
    const auto frames = s->Symbolize(OuterOfInlined());
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].function, "lockprof::agent::(anonymous namespace)::InlinedCallee");
    EXPECT_EQ(frames[1].function, "lockprof::agent::(anonymous namespace)::OuterOfInlined");
    EXPECT_EQ(frames[1].line, kOuterCallLine);
  }
  if (action != "delete") unlink(now.c_str());
}

// The copy goes next to the test binary, where executables may run (/tmp
// may be mounted noexec); the child exits 127 only if it could not exec.
void RunCopyOfSelf(const std::string& action) {
  char exe[PATH_MAX] = {};
  ASSERT_GT(readlink("/proc/self/exe", exe, sizeof exe - 1), 0);
  std::string dir_template =
      std::string(exe).substr(0, std::string(exe).rfind('/')) + "/lockprof_symtest_XXXXXX";
  char* dir = mkdtemp(dir_template.data());
  ASSERT_NE(dir, nullptr);
  const std::string copy = std::string(dir) + "/copy_of_test";
  {
    std::ifstream in("/proc/self/exe", std::ios::binary);
    std::ofstream out(copy, std::ios::binary);
    out << in.rdbuf();
    ASSERT_TRUE(out.good());
  }
  ASSERT_EQ(chmod(copy.c_str(), 0700), 0);
  const std::string filter =
      "--gtest_filter=" +
      std::string(testing::UnitTest::GetInstance()->current_test_info()->test_suite_name()) + "." +
      testing::UnitTest::GetInstance()->current_test_info()->name();
  // The child's environment is built before fork(): the child only execs
  // (setenv there would allocate, unsafe in a child of threads).
  std::vector<std::string> env_strings = {std::string(kChildEnv) + "=" + action};
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(copy.c_str()), const_cast<char*>(filter.c_str()), nullptr};
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execve(copy.c_str(), argv, envp.data());
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  unlink(copy.c_str());
  rmdir(dir);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "child status " << status << " (exit 127: the copy could not be run)";
}

TEST(SymbolizerExeTest, WorksAfterExecutableDeleted) {
  if (const char* action = getenv(kChildEnv)) return ChildSymbolizesAfter(action);
  RunCopyOfSelf("delete");
}

TEST(SymbolizerExeTest, WorksAfterExecutableMoved) {
  if (const char* action = getenv(kChildEnv)) return ChildSymbolizesAfter(action);
  RunCopyOfSelf("move");
}

}  // namespace
}  // namespace lockprof::agent
