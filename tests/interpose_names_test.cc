// The names the interposer gives global and static pthread locks
// (primitives/interpose/lock_names.h), with the interposer linked in: a
// library unloaded and another loaded at its addresses, a library file
// replaced on disk or reached by a relative path from another directory,
// and more static locks than the table of names holds.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "lock_order_fixture.h"
#include "lockprof/primitives/interpose/lock_names.h"
#include "test_util.h"

// More static locks than the table names (kMaxNamedLocks, twice as many slots).
pthread_mutex_t g_stripes[5 * lockprof::interpose::kMaxNamedLocks];

namespace lockprof {
namespace {

namespace fs = std::filesystem;
using interpose::LockName;

struct Plugin {
  void* handle = nullptr;
  pthread_mutex_t* lock = nullptr;
};

Plugin Load(const std::string& path) {
  Plugin p;
  p.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  EXPECT_NE(p.handle, nullptr) << dlerror();
  if (p.handle == nullptr) return p;
  auto get = reinterpret_cast<pthread_mutex_t* (*)()>(dlsym(p.handle, "PluginLock"));
  EXPECT_NE(get, nullptr);
  if (get != nullptr) p.lock = get();
  return p;
}

// A new empty directory under the system's temporary one.
fs::path NewTempDir() {
  std::string path = (fs::temp_directory_path() / "lockprof_names_XXXXXX").string();
  if (mkdtemp(path.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << errno;
  return path;
}

class InterposeNamesTest : public testing::LockOrderFixture {};

TEST_F(InterposeNamesTest, ALibraryLoadedWhereAnUnloadedOneWasGetsItsOwnNamesAndEdges) {
  pthread_mutex_t* first_lock = nullptr;
  int reused = 0;
  // The loader usually puts the second build where the first was; a few
  // tries make sure the addresses were reused at least once.
  for (int attempt = 0; attempt < 5; ++attempt) {
    Plugin first = Load(LOCKPROF_NAMED_LOCK_FIRST_PATH);
    ASSERT_NE(first.lock, nullptr);
    EXPECT_STREQ(LockName(first.lock), "g_first_lock");
    // g_held -> first, then (first gone) other -> ... -> g_held below: the
    // two locks never exist together, so there is no inversion.
    static pthread_mutex_t g_order_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(first.lock);
    pthread_mutex_lock(&g_order_mu);
    pthread_mutex_unlock(&g_order_mu);
    pthread_mutex_unlock(first.lock);
    first_lock = first.lock;
    ASSERT_EQ(dlclose(first.handle), 0);

    Plugin other = Load(LOCKPROF_NAMED_LOCK_OTHER_PATH);
    ASSERT_NE(other.lock, nullptr);
    reused += other.lock == first_lock;
    EXPECT_STREQ(LockName(other.lock), "g_other_lock");
    pthread_mutex_lock(&g_order_mu);
    pthread_mutex_lock(other.lock);
    pthread_mutex_unlock(other.lock);
    pthread_mutex_unlock(&g_order_mu);
    ASSERT_EQ(dlclose(other.handle), 0);
  }
  EXPECT_GT(reused, 0) << "the loader never reused the unloaded library's addresses";
  EXPECT_EQ(hook_calls.load(), 0) << ::testing::PrintToString(hook_edges);
}

// A copy of `from` at `to`, replacing what is there by a rename, as a
// package manager does.
void Install(const std::string& from, const fs::path& to) {
  const fs::path tmp = to.string() + ".new";
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing);
  fs::rename(tmp, to);
}

TEST_F(InterposeNamesTest, ALibraryReplacedOnDiskIsNotReadForItsNames) {
  const fs::path dir = NewTempDir();
  const fs::path lib = dir / "libplugin.so";
  Install(LOCKPROF_NAMED_LOCK_FIRST_PATH, lib);
  Plugin p = Load(lib.string());
  ASSERT_NE(p.lock, nullptr);
  Install(LOCKPROF_NAMED_LOCK_OTHER_PATH, lib);  // Upgraded while loaded.
  EXPECT_STREQ(LockName(p.lock), "(unnamed)");
  EXPECT_EQ(dlclose(p.handle), 0);
  // Loaded again from the new file: named from it.
  Plugin again = Load(lib.string());
  ASSERT_NE(again.lock, nullptr);
  EXPECT_STREQ(LockName(again.lock), "g_other_lock");
  EXPECT_EQ(dlclose(again.handle), 0);
  fs::remove_all(dir);
}

TEST_F(InterposeNamesTest, ALibraryLoadedByARelativePathIsNotReadFromAnotherDirectory) {
  const fs::path dir = NewTempDir();
  fs::create_directories(dir / "loaded");
  fs::create_directories(dir / "elsewhere");
  Install(LOCKPROF_NAMED_LOCK_FIRST_PATH, dir / "loaded" / "libplugin.so");
  Install(LOCKPROF_NAMED_LOCK_OTHER_PATH, dir / "elsewhere" / "libplugin.so");
  const fs::path cwd = fs::current_path();
  fs::current_path(dir / "loaded");
  Plugin p = Load("./libplugin.so");
  ASSERT_NE(p.lock, nullptr);
  fs::current_path(dir / "elsewhere");  // A daemon's chdir after loading.
  EXPECT_STREQ(LockName(p.lock), "(unnamed)");
  fs::current_path(cwd);
  EXPECT_EQ(dlclose(p.handle), 0);
  fs::remove_all(dir);
}

TEST_F(InterposeNamesTest, LocksPastTheTablesRoomStayUnnamedWithoutAScanEach) {
  for (pthread_mutex_t& m : g_stripes) LockName(&m);
  EXPECT_STREQ(LockName(&g_stripes[0]), "g_stripes");
  const uint64_t scans = interpose::LockNameFileScans();
  int unnamed = 0;
  for (pthread_mutex_t& m : g_stripes) unnamed += std::string(LockName(&m)) == "(unnamed)";
  EXPECT_GT(unnamed, 0);  // The table is full.
  EXPECT_EQ(interpose::LockNameFileScans(), scans);
}

}  // namespace
}  // namespace lockprof
