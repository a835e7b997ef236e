#include "lockprof/agent/record/exited_holds.h"

#include <sys/prctl.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <utility>

#include "lockprof/agent/base/fork.h"

namespace lockprof::agent {
namespace {

// Never destroyed: threads exit during static destruction too.
std::mutex& Mu() {
  static auto* mu = [] {
    auto* m = new std::mutex;
    HoldAcrossFork(m, ForkRank::kExitedHolds);
    return m;
  }();
  return *mu;
}

std::deque<ThreadLocksView>& Kept() {
  static auto* kept = new std::deque<ThreadLocksView>;
  return *kept;
}

}  // namespace

void RememberExitedHolds(ThreadLocksView view) {
  char name[16] = {};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  for (LockView& h : view.held) {
    h.exited = true;
    std::memcpy(h.exited_name, name, sizeof h.exited_name);
  }
  std::lock_guard<std::mutex> l(Mu());
  std::deque<ThreadLocksView>& kept = Kept();
  kept.push_back(std::move(view));
  if (kept.size() > size_t(kMaxExitedHolders)) kept.pop_front();
}

void AppendExitedHolds(std::vector<ThreadLocksView>* live) {
  std::set<const void*> held_now;
  for (const ThreadLocksView& t : *live) {
    for (const LockView& h : t.held) held_now.insert(h.lock);
  }
  std::lock_guard<std::mutex> l(Mu());
  for (const ThreadLocksView& t : Kept()) {
    ThreadLocksView v;
    v.tid = t.tid;
    for (const LockView& h : t.held) {
      if (held_now.count(h.lock) == 0) v.held.push_back(h);
    }
    if (!v.held.empty()) live->push_back(std::move(v));
  }
}

}  // namespace lockprof::agent
