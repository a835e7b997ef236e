// The interposer's start-up: real functions, fork handler, the unwinder,
// and (in liblockprof_preload.so) where lockprof's own code lies.
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <unwind.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "lockprof/agent/base/env.h"
#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/primitives/absl_mutex_profile.h"
#include "lockprof/primitives/interpose/interpose_common.h"
#include "lockprof/primitives/interpose/real_pthread.h"

namespace lockprof::interpose {
namespace {

// Code whose locks are passed straight through: lockprof's own in the
// preload library, and the stack unwinder's.
struct CodeRange {
  std::atomic<uintptr_t> lo{0};
  std::atomic<uintptr_t> len;

  // `all`: the range holds every address until it is set.
  constexpr explicit CodeRange(bool all) : len(all ? UINTPTR_MAX : 0) {}

  bool Contains(const void* pc) const {
    return reinterpret_cast<uintptr_t>(pc) - lo.load(std::memory_order_relaxed) <
           len.load(std::memory_order_relaxed);
  }
  // The executable segment of the object that holds `addr` (nothing if
  // that cannot be found).
  void SetToObjectOf(const void* addr) {
    len.store(0, std::memory_order_relaxed);
    Dl_info info;
    link_map* object = nullptr;
    if (dladdr1(addr, &info, reinterpret_cast<void**>(&object), RTLD_DL_LINKMAP) == 0 ||
        object == nullptr) {
      return;
    }
    struct Found {
      ElfW(Addr) base;
      uintptr_t lo = 0, hi = 0;
    } found{object->l_addr};
    dl_iterate_phdr(
        [](dl_phdr_info* i, size_t, void* arg) {
          auto* f = static_cast<Found*>(arg);
          if (i->dlpi_addr != f->base) return 0;
          for (int k = 0; k < i->dlpi_phnum; ++k) {
            const ElfW(Phdr)& p = i->dlpi_phdr[k];
            if (p.p_type == PT_LOAD && (p.p_flags & PF_X) != 0) {
              f->lo = i->dlpi_addr + p.p_vaddr;
              f->hi = f->lo + p.p_memsz;
              return 1;
            }
          }
          return 0;
        },
        &found);
    lo.store(found.lo, std::memory_order_relaxed);
    len.store(found.hi - found.lo, std::memory_order_relaxed);
  }
};

// All of lockprof (agent, server, primitives) is linked into the preload
// library: its locks are never the program's. Until InitInterposer() runs,
// every caller counts as lockprof's: what locks before it are the
// constructors of the libraries loaded ahead of it — its own dependencies
// in the preload library (libssl's initialises OpenSSL under its rwlocks),
// the program's libraries in the link-time form — not the program's work.
CodeRange g_own{true};
// The unwinder lockprof's CFI stack capture calls (libgcc_s's
// _Unwind_Backtrace, or libunwind's if the program brought it): a lock it
// takes (libunwind's caches, libgcc's registered-frame lock, also while a
// C++ exception unwinds) must not reach the recorder, which would unwind
// again while that lock is held, and deadlock on it.
CodeRange g_unwinder{false};

agent::UnwindMode UnwindModeFromEnv() {
  const char* v = std::getenv("LOCKPROF_UNWIND");
  if (v == nullptr || std::strcmp(v, "fallback") == 0) return agent::UnwindMode::kFallback;
  if (std::strcmp(v, "fp") == 0) return agent::UnwindMode::kFramePointers;
  if (std::strcmp(v, "cfi") == 0) return agent::UnwindMode::kCfi;
  std::fprintf(stderr, "lockprof: LOCKPROF_UNWIND=\"%s\" ignored (fp, fallback or cfi)\n", v);
  return agent::UnwindMode::kFallback;
}

// Before lockprof's other initialisers in the same object (the admin server
// and uploader autostart), so that their threads' locks are already known
// as lockprof's own.
__attribute__((constructor(101))) void InitInterposer() {
  ResolveRealFunctions();
#ifdef LOCKPROF_INTERPOSE_PRELOAD
  g_own.SetToObjectOf(reinterpret_cast<void*>(&InitInterposer));
#else
  g_own.len.store(0, std::memory_order_relaxed);
#endif
  g_unwinder.SetToObjectOf(reinterpret_cast<void*>(&_Unwind_Backtrace));
  agent::SetUnwindMode(UnwindModeFromEnv());
  // absl::Mutex does not lock through pthread: its own hook, on request.
  int64_t absl = 0;
  if (agent::ParseEnvInt("LOCKPROF_ABSL_MUTEXES", 0, 1, &absl) && absl == 1) ProfileAbslMutexes();
}

}  // namespace

bool IsPassThroughCode(const void* pc) { return g_own.Contains(pc) || g_unwinder.Contains(pc); }

}  // namespace lockprof::interpose
