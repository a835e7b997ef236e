// A lock may be destroyed as soon as another thread can lock and unlock it
// (the reference-count pattern POSIX allows; glibc bug 13690 was this
// class): no unlock may touch the lock object after its releasing atomic
// operation. Here threads drop references to objects under each object's
// own lock, and the last one destroys the lock, overwrites its memory with
// a pattern and (under ASan) poisons it, while the others may still be
// inside unlock(). Slow unlock paths are forced (every rate at 1, so every
// unlock ends a sampled hold, and waits park block events).
//
// The windows are a few instructions wide (the releasing operation and the
// next access), so a run hits them only when a thread is preempted there;
// the test is a guard, run under ASan and TSan, not a proof. The argument
// that no access follows the release is in each unlock path's comments.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <new>
#include <thread>
#include <type_traits>
#include <vector>

#include "lockprof/lockprof.h"
#include "test_util.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOCKPROF_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LOCKPROF_TEST_ASAN 1
#endif
#ifdef LOCKPROF_TEST_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace {

using lockprof::testing::ScopedRates;

constexpr unsigned char kPattern = 0x5A;

// One object: a lock, and the references to it, which the lock guards.
template <typename Lock>
struct Shared {
  Lock mu{"unlock.lifetime"};
  std::atomic<int> refs{0};
};

// kThreads threads walk the same objects in the same order; each drops its
// reference to each object under the object's lock (exclusive, or shared
// for odd-numbered threads when `readers`), and the thread that drops the
// last one destroys the lock and overwrites it (after a lock and unlock of
// its own when readers may still hold it). Returns the objects whose
// memory no longer holds the pattern once every thread is done.
template <typename Lock>
int RacesWithDestruction(bool readers) {
  ScopedRates rates(1, 1, 1);
  constexpr int kThreads = 4, kObjects = 20000;
  using Object = Shared<Lock>;
  std::vector<std::unique_ptr<unsigned char[]>> storage(kObjects);
  std::vector<Object*> objects(kObjects);
  for (int i = 0; i < kObjects; ++i) {
    storage[i] = std::make_unique<unsigned char[]>(sizeof(Object));
    objects[i] = new (storage[i].get()) Object;
    objects[i]->refs = kThreads;
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kObjects; ++i) {
        Object* o = objects[i];
        bool last;
        if constexpr (!std::is_same_v<Lock, lockprof::Mutex>) {
          if (readers && t % 2 == 1) {
            o->mu.lock_shared();
            last = o->refs.fetch_sub(1) == 1;
            o->mu.unlock_shared();
          } else {
            o->mu.lock();
            last = o->refs.fetch_sub(1) == 1;
            o->mu.unlock();
          }
        } else {
          o->mu.lock();
          last = o->refs.fetch_sub(1) == 1;
          o->mu.unlock();
        }
        if (last) {
          if constexpr (!std::is_same_v<Lock, lockprof::Mutex>) {
            // Readers that dropped theirs may still hold the lock: once we
            // can lock and unlock it, every one has released it.
            if (readers) {
              o->mu.lock();
              o->mu.unlock();
            }
          }
          o->~Object();
          std::memset(static_cast<void*>(o), kPattern, sizeof(Object));
          POISON(o, sizeof(Object));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  int touched = 0;
  for (int i = 0; i < kObjects; ++i) {
    UNPOISON(storage[i].get(), sizeof(Object));
    for (size_t b = 0; b < sizeof(Object); ++b) {
      if (storage[i][b] != kPattern) {
        ++touched;
        break;
      }
    }
  }
  return touched;
}

TEST(UnlockLifetimeTest, MutexIsNotTouchedAfterItsRelease) {
  EXPECT_EQ(RacesWithDestruction<lockprof::Mutex>(false), 0);
}

TEST(UnlockLifetimeTest, SharedMutexWriterIsNotTouchedAfterItsRelease) {
  EXPECT_EQ(RacesWithDestruction<lockprof::SharedMutex>(false), 0);
}

TEST(UnlockLifetimeTest, SharedMutexReaderIsNotTouchedAfterItsRelease) {
  EXPECT_EQ(RacesWithDestruction<lockprof::SharedMutex>(true), 0);
}

}  // namespace
