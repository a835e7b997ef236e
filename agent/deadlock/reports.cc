#include "lockprof/agent/deadlock/reports.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include "lockprof/agent/base/strings.h"
#include "lockprof/agent/deadlock/events.h"
#include "lockprof/agent/pprof/pprof_encoder.h"
#include "lockprof/agent/pprof/resolved_profile.h"
#include "lockprof/agent/record/clock.h"
#include "lockprof/agent/record/lock_tracking.h"
#include "lockprof/agent/record/record.h"
#include "lockprof/agent/symbolize/symbolizer.h"

namespace lockprof::agent {
namespace {

struct Frame {
  uintptr_t pc;
  SourceFrame source;
};

// The frames of a stack, inlined ones included, without lockprof's own
// frames at the leaf end.
std::vector<Frame> Symbolized(const uintptr_t* pcs, int depth) {
  // These reports must come while the program is stuck, a dlopen() perhaps
  // among what is stuck (holding the loader's lock).
  const Symbolizer::LoaderLockFree loader_lock_free;
  std::vector<Frame> out;
  for (int i = 0; i < depth; ++i) {
    std::vector<SourceFrame> frames = Symbolizer::Global().Symbolize(pcs[i] - 1);
    if (frames.empty()) frames.push_back({"?", "?", "", 0, 0});
    for (SourceFrame& f : frames) {
      if (out.empty() && IsInternalFrame(f.function)) continue;
      out.push_back({pcs[i], std::move(f)});
    }
  }
  return out;
}

std::string Location(const SourceFrame& f) {
  std::string s = f.function;
  if (!f.file.empty()) s += " " + f.file + ":" + std::to_string(f.line);
  return s;
}

void AppendStackText(const uintptr_t* pcs, int depth, std::string* out) {
  const std::vector<Frame> frames = Symbolized(pcs, depth);
  if (frames.empty()) out->append("    (no stack)\n");
  for (size_t i = 0; i < frames.size(); ++i) {
    char head[48];
    std::snprintf(head, sizeof head, "    #%zu 0x%016" PRIxPTR " ", i, frames[i].pc);
    out->append(head).append(Location(frames[i].source)).append("\n");
  }
}

void AppendStackJson(const uintptr_t* pcs, int depth, std::string* out) {
  out->append("[");
  const std::vector<Frame> frames = Symbolized(pcs, depth);
  for (size_t i = 0; i < frames.size(); ++i) {
    char address[32];
    std::snprintf(address, sizeof address, "0x%" PRIxPTR, frames[i].pc);
    out->append(i == 0 ? "{\"address\":" : ",{\"address\":");
    AppendJsonString(address, out);
    out->append(",\"function\":");
    AppendJsonString(frames[i].source.function, out);
    out->append(",\"file\":");
    AppendJsonString(frames[i].source.file, out);
    out->append(",\"line\":").append(std::to_string(frames[i].source.line)).append("}");
  }
  out->append("]");
}

// In whole milliseconds, with a '.' whatever the program's locale (printf's
// "%f" would follow it).
std::string Seconds(int64_t ns) {
  const long long ms = std::max<int64_t>(ns, 0) / 1000000;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld s", ms / 1000, ms % 1000);
  return buf;
}

std::string ExitedName(const LockView& v) {
  return std::string(v.exited_name, strnlen(v.exited_name, sizeof v.exited_name));
}

std::string HolderLabel(int64_t tid, const LockView& v) {
  return v.exited ? ThreadLabel(tid, ExitedName(v).c_str()) : ThreadLabel(tid);
}

// Every lock held or awaited now, with its holders and waiters.
struct LockState {
  std::string name;  // Empty: unnamed.
  const char* DisplayName() const { return LockDisplayName(name.empty() ? nullptr : name.c_str()); }
  std::vector<std::pair<int64_t, LockView>> holders;  // (tid, entry)
  std::vector<std::pair<int64_t, LockView>> waiters;
  int64_t longest_wait = 0;
};

std::vector<std::pair<const void*, LockState>> CurrentLocks(int64_t now) {
  std::map<const void*, LockState> locks;
  for (const ThreadLocksView& t : SnapshotThreadLocks()) {
    for (const LockView& h : t.held) {
      LockState& s = locks[h.lock];
      if (s.name.empty()) s.name = h.name;
      s.holders.emplace_back(t.tid, h);
    }
    if (t.waiting) {
      LockState& s = locks[t.wait.lock];
      if (s.name.empty()) s.name = t.wait.name;
      s.waiters.emplace_back(t.tid, t.wait);
      s.longest_wait = std::max(s.longest_wait, now - t.wait.since);
    }
  }
  std::vector<std::pair<const void*, LockState>> out(locks.begin(), locks.end());
  // Awaited locks first, the longest wait first.
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second.longest_wait > b.second.longest_wait;
  });
  return out;
}

const char* ModeWord(const LockView& v) {
  if (v.mode == LockMode::kRead) return v.tried ? "read, try_lock" : "read";
  if (v.mode == LockMode::kWrite) return v.tried ? "write, try_lock" : "write";
  return v.tried ? "try_lock" : "exclusive";
}

// "  <verb> thread T (name) for S (mode)[, thread ...], at:" and the stack,
// once for each group of threads with the same stack and mode (a lock
// awaited by a pool of identical workers is one paragraph, not forty).
void AppendThreadsText(const char* verb, const std::vector<std::pair<int64_t, LockView>>& threads,
                       int64_t now, std::string* out) {
  std::vector<bool> done(threads.size());
  for (size_t i = 0; i < threads.size(); ++i) {
    if (done[i]) continue;
    const LockView& first = threads[i].second;
    std::string who;
    for (size_t j = i; j < threads.size(); ++j) {
      const LockView& v = threads[j].second;
      if (done[j] || v.depth != first.depth || v.mode != first.mode || v.tried != first.tried ||
          !std::equal(v.pcs, v.pcs + v.depth, first.pcs)) {
        continue;
      }
      done[j] = true;
      who += (who.empty() ? "" : ", ") + HolderLabel(threads[j].first, v);
      if (v.since != 0) who += " for " + Seconds(now - v.since);
    }
    out->append("  ").append(verb).append(" ").append(who);
    out->append(" (").append(ModeWord(first)).append(")");
    if (first.since == 0) {
      // Lock-order checking alone records which locks, not since when or where.
      out->append("; since when and where: set LOCKPROF_TRACK_HELD=1\n");
      continue;
    }
    out->append(", at:\n");
    AppendStackText(first.pcs, first.depth, out);
  }
}

}  // namespace

std::string ThreadName(int64_t tid) {
  std::ifstream comm("/proc/self/task/" + std::to_string(tid) + "/comm");
  // The whole name: one may hold a newline (pthread_setname_np takes any
  // byte); the kernel ends it with one more.
  std::string name((std::istreambuf_iterator<char>(comm)), std::istreambuf_iterator<char>());
  if (!name.empty() && name.back() == '\n') name.pop_back();
  return name;
}

std::string PrintableName(std::string_view name) {
  // As lock names are written in text: escaped (a carriage return or an
  // escape sequence in a thread's name would rewrite the line on a
  // terminal), here without the quotes.
  const std::string quoted = QuotedName(name);
  return quoted.substr(1, quoted.size() - 2);
}

std::string PrintableThreadName(int64_t tid) { return PrintableName(ThreadName(tid)); }

std::string FirstUserFrame(const uintptr_t* pcs, int depth) {
  const std::vector<Frame> frames = Symbolized(pcs, depth);
  return frames.empty() ? "?" : Location(frames[0].source);
}

std::string ThreadLabel(int64_t tid, const char* exited_name) {
  if (exited_name != nullptr) {
    return "thread " + std::to_string(tid) + " (" + PrintableName(exited_name) + ", exited)";
  }
  const std::string name = PrintableThreadName(tid);
  return "thread " + std::to_string(tid) + (name.empty() ? "" : " (" + name + ")");
}

Inversion ToInversion(const Cycle& cycle) {
  Inversion inv;
  inv.total_edges = cycle.total_edges;
  for (int i = 0; i < cycle.num_edges; ++i) {
    const CycleEdge& e = cycle.edges[i];
    inv.edges.push_back({e.from, e.to, e.tid, std::vector<uintptr_t>(e.pcs, e.pcs + e.depth)});
  }
  return inv;
}

std::vector<Inversion> LockOrderInversionsFound() {
  // Without the graph's mutex: this allocates, and a thread adding an edge
  // inside the application's allocator may be waiting for that mutex.
  std::vector<Inversion> out;
  const int n = FoundCycles();
  for (int i = 0; i < n; ++i) out.push_back(ToInversion(FoundCycle(i)));
  return out;
}

std::string InversionText(const Inversion& inversion) {
  if (inversion.total_edges == 1 && !inversion.edges.empty()) {  // AddSelfWait's.
    const InversionEdge& e = inversion.edges[0];
    std::string out = "self-deadlock: " + ThreadLabel(e.tid) + " waits for " + QuotedName(e.to) +
                      ", which it holds, at:\n";
    AppendStackText(e.stack.data(), int(e.stack.size()), &out);
    return out;
  }
  std::string out = "cycle of " + std::to_string(inversion.total_edges) + " locks:";
  for (const InversionEdge& e : inversion.edges) out += " " + QuotedName(e.from) + " ->";
  const size_t more = size_t(inversion.total_edges) - inversion.edges.size();
  if (more > 0) out += " (" + std::to_string(more) + " more, not kept) ->";
  out += " " + QuotedName(inversion.edges[0].from) + "\n";
  for (const InversionEdge& e : inversion.edges) {
    out += "  " + QuotedName(e.to) + " acquired while holding " + QuotedName(e.from) + " by " +
           ThreadLabel(e.tid) + ", at:\n";
    AppendStackText(e.stack.data(), int(e.stack.size()), &out);
  }
  return out;
}

std::string LockOrderText() {
  const std::vector<Inversion> found = LockOrderInversionsFound();
  std::string out = "lockprof lock-order inversions (potential deadlocks): " +
                    std::to_string(LockOrderInversionCount()) + " found; checking " +
                    LockOrderModeName() + "\n";
  for (size_t i = 0; i < found.size(); ++i) {
    out += "\nInversion " + std::to_string(i + 1) + ": " + InversionText(found[i]);
  }
  return out;
}

std::string LockOrderJson() {
  const std::vector<Inversion> found = LockOrderInversionsFound();
  std::string out = "{\"checking\":";
  AppendJsonString(LockOrderModeName(), &out);
  out += ",\"found\":" + std::to_string(LockOrderInversionCount()) + ",\"inversions\":[";
  for (size_t i = 0; i < found.size(); ++i) {
    out += i == 0 ? "{" : ",{";
    out += "\"length\":" + std::to_string(found[i].total_edges) + ",\"edges\":[";
    for (size_t j = 0; j < found[i].edges.size(); ++j) {
      const InversionEdge& e = found[i].edges[j];
      out += j == 0 ? "{\"from\":" : ",{\"from\":";
      AppendJsonString(e.from, &out);
      out += ",\"to\":";
      AppendJsonString(e.to, &out);
      out += ",\"tid\":" + std::to_string(e.tid) + ",\"stack\":";
      AppendStackJson(e.stack.data(), int(e.stack.size()), &out);
      out += "}";
    }
    out += "]}";
  }
  return out + "]}\n";
}

std::string HeldLocksText() {
  const int64_t now = MonotonicNanos();
  std::string out = "lockprof held and awaited locks; holders ";
  out += LockTrackingOn() ? "tracked\n"
                          : "not tracked (set LOCKPROF_TRACK_HELD=1, LOCKPROF_LOCK_ORDER "
                            "or LOCKPROF_STALL_REPORT_MS to see them)\n";
  for (const auto& [lock, s] : CurrentLocks(now)) {
    char address[32];
    std::snprintf(address, sizeof address, "%p", lock);
    out += "\nlock " + QuotedName(s.DisplayName()) + " (" + address + ")\n";
    if (s.holders.empty())
      out += "  holder: " +
             std::string(LockTrackingOn() ? "not recorded (taken before tracking began, or by a "
                                            "thread that held 16 locks already)"
                                          : "not tracked") +
             "\n";
    AppendThreadsText("held by", s.holders, now, &out);
    AppendThreadsText("awaited by", s.waiters, now, &out);
  }
  return out;
}

std::string HeldLocksJson() {
  const int64_t now = MonotonicNanos();
  std::string out = "{\"holders_tracked\":";
  out += LockTrackingOn() ? "true" : "false";
  out += ",\"locks\":[";
  bool first_lock = true;
  for (const auto& [lock, s] : CurrentLocks(now)) {
    char address[32];
    std::snprintf(address, sizeof address, "%p", lock);
    out += first_lock ? "{\"lock\":" : ",{\"lock\":";
    first_lock = false;
    AppendJsonString(s.DisplayName(), &out);
    out += ",\"address\":";
    AppendJsonString(address, &out);
    for (const char* side : {"holders", "waiters"}) {
      const bool holders = side[0] == 'h';
      out += ",\"" + std::string(side) + "\":[";
      const auto& list = holders ? s.holders : s.waiters;
      for (size_t i = 0; i < list.size(); ++i) {
        const auto& [tid, v] = list[i];
        out += i == 0 ? "{\"tid\":" : ",{\"tid\":";
        out += std::to_string(tid) + ",\"thread\":";
        AppendJsonString(v.exited ? ExitedName(v) : ThreadName(tid), &out);
        if (v.exited) out += ",\"exited\":true";
        out += ",\"mode\":";
        AppendJsonString(ModeWord(v), &out);
        out += holders ? ",\"held_ns\":" : ",\"waited_ns\":";
        // null: not recorded (lock-order checking alone; see HeldDetailsOn).
        out += v.since == 0 ? std::string("null")
                            : std::to_string(std::max<int64_t>(now - v.since, 0));
        out += ",\"stack\":";
        AppendStackJson(v.pcs, v.depth, &out);
        out += "}";
      }
      out += "]";
    }
    out += "}";
  }
  return out + "]}\n";
}

absl::StatusOr<std::string> HeldLocksPprof() {
  static const ProfileInfo kHeldInfo = {ProfileId::kBlock,
                                        "held",
                                        "Threads waiting for a lock right now",
                                        {{"waiters", "count"}, {"delay", "nanoseconds"}},
                                        "--- held:",
                                        false};
  const Symbolizer::LoaderLockFree loader_lock_free;  // As Symbolized's.
  const int64_t now = MonotonicNanos();
  ResolvedProfile profile;
  profile.info = &kHeldInfo;
  profile.time_nanos = WallNanos();
  profile.period = 1;
  SampleResolver resolver(&profile);
  for (const auto& [lock, s] : CurrentLocks(now)) {
    for (const auto& [tid, w] : s.waiters) {
      ResolvedSample& sample = resolver.Add(w.pcs, w.depth, 1, std::max<int64_t>(now - w.since, 0));
      sample.str_labels.emplace_back("lock", s.DisplayName());
      if (const char* mode = LockModeName(w.mode)) sample.str_labels.emplace_back("mode", mode);
      sample.num_labels.push_back({"waiter_tid", tid});
      if (!s.holders.empty()) sample.num_labels.push_back({"holder_tid", s.holders[0].first});
    }
  }
  std::sort(
      profile.samples.begin(), profile.samples.end(),
      [](const ResolvedSample& a, const ResolvedSample& b) { return a.values[1] > b.values[1]; });
  std::string gzipped = Gzip(EncodePprof(profile));
  if (gzipped.empty()) return absl::InternalError("failed to compress profile");
  return gzipped;
}

}  // namespace lockprof::agent
