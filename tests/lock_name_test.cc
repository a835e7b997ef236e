// Lock names cannot dangle: every primitive that takes a name accepts a
// string literal or a const array, and refuses at compile time what could
// be freed or rewritten while the lock uses it (a const char*, a mutable
// array, a std::string). Construction stays constexpr: global locks are
// constant-initialised. These checks are compile-time (static_assert): the
// file does not build if a primitive accepts a pointer again.
#include <gtest/gtest.h>

#include <string>
#include <type_traits>

#include "absl/base/attributes.h"
#include "lockprof/lockprof.h"
#include "test_util.h"

namespace {

using lockprof::Atomic;
using lockprof::CondVar;
using lockprof::CowPtr;
using lockprof::Mutex;
using lockprof::ShardedMap;
using lockprof::SharedMutex;

// What a name may be: a literal (a const array lvalue), a const array, no
// name at all.
template <typename T, typename... Extra>
constexpr bool AcceptsOnlyArrays() {
  return std::is_constructible_v<T, const char(&)[6], Extra...> &&
         !std::is_constructible_v<T, const char*, Extra...> &&
         !std::is_constructible_v<T, char*, Extra...> &&
         !std::is_constructible_v<T, char(&)[6], Extra...> &&
         !std::is_constructible_v<T, std::string, Extra...> &&
         !std::is_constructible_v<T, const std::string&, Extra...>;
}

static_assert(AcceptsOnlyArrays<Mutex>());
static_assert(AcceptsOnlyArrays<SharedMutex>());
static_assert(AcceptsOnlyArrays<SharedMutex, int32_t>());
static_assert(AcceptsOnlyArrays<CondVar>());
static_assert(AcceptsOnlyArrays<Atomic<int64_t>>());
static_assert(AcceptsOnlyArrays<Atomic<int64_t>, int64_t>());
// Atomic<bool> converts a pointer to its value, as std::atomic<bool> does;
// a literal names it, and a mutable array is refused.
static_assert(std::is_constructible_v<Atomic<bool>, const char (&)[6]> &&
              !std::is_constructible_v<Atomic<bool>, char (&)[6]>);
static_assert(AcceptsOnlyArrays<Atomic<const char*>, const char*>());
static_assert(AcceptsOnlyArrays<CowPtr<int>>());
static_assert(AcceptsOnlyArrays<CowPtr<int>, int>());
static_assert(AcceptsOnlyArrays<ShardedMap<int, int>>());
static_assert(AcceptsOnlyArrays<ShardedMap<int, int>, size_t>());
static_assert(AcceptsOnlyArrays<lockprof::ShardedCounter>());
static_assert(AcceptsOnlyArrays<lockprof::ShardedCounter, size_t>());
static_assert(std::is_constructible_v<ShardedMap<int, int>, std::nullptr_t, size_t>);
static_assert(std::is_constructible_v<CowPtr<int>, std::nullptr_t>);
// For a pointer type, one argument is the value, as for std::atomic.
static_assert(std::is_constructible_v<Atomic<const char*>, const char*>);

// Globals are constant-initialised (clang checks ABSL_CONST_INIT; the test
// below checks the names arrived).
constexpr char kArrayName[] = "test.array";
ABSL_CONST_INIT Mutex g_mutex{"test.mutex"};
ABSL_CONST_INIT Mutex g_array_mutex{kArrayName};
ABSL_CONST_INIT SharedMutex g_shared{"test.shared", 3};
ABSL_CONST_INIT CondVar g_cv{"test.cv"};
ABSL_CONST_INIT Atomic<int64_t> g_atomic{"test.atomic", 7};
ABSL_CONST_INIT Atomic<bool> g_flag{"test.flag"};
ABSL_CONST_INIT Mutex g_unnamed;

TEST(LockNameTest, NamesArriveUnchanged) {
  EXPECT_STREQ(g_mutex.name(), "test.mutex");
  EXPECT_EQ(g_array_mutex.name(), kArrayName);  // Not copied.
  EXPECT_STREQ(g_shared.name(), "test.shared");
  EXPECT_STREQ(g_cv.name(), "test.cv");
  EXPECT_EQ(g_atomic.load(), 7);
  EXPECT_STREQ(g_atomic.name(), "test.atomic");
  EXPECT_FALSE(g_flag.load());  // A name, not the value `true`.
  EXPECT_STREQ(g_flag.name(), "test.flag");
  EXPECT_EQ(g_unnamed.name(), nullptr);
  CowPtr<int> cow{"test.cow", 5};
  EXPECT_STREQ(cow.name(), "test.cow");
  EXPECT_EQ(CowPtr<int>().name(), nullptr);
  ShardedMap<int, int> map{"test.map", 4};
  EXPECT_STREQ(map.name(), "test.map");
  EXPECT_EQ((ShardedMap<int, int>(nullptr, 2).name()), nullptr);
  EXPECT_STREQ(lockprof::ShardedCounter("test.counter").name(), "test.counter");
}

}  // namespace
