#include "lockprof/agent/fork.h"

#include <pthread.h>

namespace lockprof::agent {

std::atomic<uint32_t> g_fork_generation{0};

namespace {

constexpr int kRanks = int(ForkRank::kCount);
std::atomic<std::mutex*> g_held[kRanks];
// Which mutexes the prepare handler took: one registered during a fork is
// not unlocked by it. Only the forking thread touches this (glibc runs the
// handlers of one fork under its atfork lock).
std::mutex* g_taken[kRanks];

void Prepare() {
  for (int r = 0; r < kRanks; ++r) {
    g_taken[r] = g_held[r].load(std::memory_order_acquire);
    if (g_taken[r] != nullptr) g_taken[r]->lock();
  }
}

void Release() {
  for (int r = kRanks; r-- > 0;) {
    if (g_taken[r] != nullptr) g_taken[r]->unlock();
    g_taken[r] = nullptr;
  }
}

void ReleaseInChild() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  Release();
}

// This object is linked whenever a primitive reads g_fork_generation or an
// agent mutex is registered, so the handlers exist in every program that
// could need them.
[[maybe_unused]] const int g_registered = pthread_atfork(&Prepare, &Release, &ReleaseInChild);

}  // namespace

void HoldAcrossFork(std::mutex* mu, ForkRank rank) {
  g_held[int(rank)].store(mu, std::memory_order_release);
}

}  // namespace lockprof::agent
