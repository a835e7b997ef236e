#include "lockprof/agent/base/fork.h"

#include <pthread.h>

#include <cstdlib>

namespace lockprof::agent {

std::atomic<uint32_t> g_fork_generation{0};
std::atomic<bool> g_forking{false};

namespace {

constexpr int kRanks = int(ForkRank::kCount);
std::atomic<std::mutex*> g_held[kRanks];
// Which mutexes the prepare handler took: one registered during a fork is
// not unlocked by it. Only the forking thread touches this (glibc runs the
// handlers of one fork under its atfork lock).
std::mutex* g_taken[kRanks];
std::atomic<void (*)()> g_child_handlers[kMaxForkChildHandlers];
std::atomic<void (*)(bool)> g_handler_scope{nullptr};

void Scope(bool enter) {
  if (void (*scope)(bool) = g_handler_scope.load(std::memory_order_acquire)) scope(enter);
}

void Prepare() {
  g_forking.store(true, std::memory_order_release);
  Scope(true);
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

void ReleaseInParent() {
  Release();
  Scope(false);
  g_forking.store(false, std::memory_order_release);
}

void ReleaseInChild() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
  Release();
  for (auto& handler : g_child_handlers) {
    if (void (*fn)() = handler.load(std::memory_order_acquire)) fn();
  }
  Scope(false);
  g_forking.store(false, std::memory_order_release);
}

// This object is linked whenever a primitive reads g_fork_generation or an
// agent mutex is registered, so the handlers exist in every program that
// could need them.
[[maybe_unused]] const int g_registered =
    pthread_atfork(&Prepare, &ReleaseInParent, &ReleaseInChild);

}  // namespace

void HoldAcrossFork(std::mutex* mu, ForkRank rank) {
  g_held[int(rank)].store(mu, std::memory_order_release);
}

std::mutex* NewMutexHeldAcrossFork(ForkRank rank, void (*in_child)()) {
  auto* mu = new std::mutex;
  HoldAcrossFork(mu, rank);
  if (in_child != nullptr) OnForkChild(in_child);
  return mu;
}

void SetForkHandlerScope(void (*scope)(bool enter)) {
  g_handler_scope.store(scope, std::memory_order_release);
}

void OnForkChild(void (*fn)()) {
  for (auto& handler : g_child_handlers) {
    void (*expected)() = nullptr;
    if (handler.compare_exchange_strong(expected, fn, std::memory_order_acq_rel) ||
        expected == fn) {
      return;
    }
  }
  std::abort();  // More handlers than slots: a lockprof bug, caught by its tests.
}

}  // namespace lockprof::agent
