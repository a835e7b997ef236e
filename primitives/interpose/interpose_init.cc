// The interposer's start-up: real functions, fork handler, the unwinder,
// and (in liblockprof_preload.so) where lockprof's own code lies.
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "lockprof/agent/record/cfi_unwind.h"
#include "lockprof/primitives/absl_mutex_profile.h"
#include "lockprof/primitives/interpose/interpose_common.h"
#include "lockprof/primitives/interpose/real_pthread.h"

namespace lockprof::interpose {
namespace {

// lockprof's own code in the preload library: [g_own_lo, g_own_lo + g_own_len).
std::atomic<uintptr_t> g_own_lo{0};
std::atomic<uintptr_t> g_own_len{0};

#ifdef LOCKPROF_INTERPOSE_PRELOAD
// The executable segment of the object that holds this function: all of
// lockprof (agent, server, primitives) is linked into it.
void FindOwnCode() {
  Dl_info info;
  link_map* self = nullptr;
  if (dladdr1(reinterpret_cast<void*>(&FindOwnCode), &info, reinterpret_cast<void**>(&self),
              RTLD_DL_LINKMAP) == 0 ||
      self == nullptr) {
    return;
  }
  struct Range {
    ElfW(Addr) base;
    uintptr_t lo = 0, hi = 0;
  } range{self->l_addr};
  dl_iterate_phdr(
      [](dl_phdr_info* i, size_t, void* arg) {
        auto* r = static_cast<Range*>(arg);
        if (i->dlpi_addr != r->base) return 0;
        for (int k = 0; k < i->dlpi_phnum; ++k) {
          const ElfW(Phdr)& p = i->dlpi_phdr[k];
          if (p.p_type == PT_LOAD && (p.p_flags & PF_X) != 0) {
            r->lo = i->dlpi_addr + p.p_vaddr;
            r->hi = r->lo + p.p_memsz;
            return 1;
          }
        }
        return 0;
      },
      &range);
  g_own_lo.store(range.lo, std::memory_order_relaxed);
  g_own_len.store(range.hi - range.lo, std::memory_order_relaxed);
}
#endif

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
  FindOwnCode();
#endif
  agent::SetUnwindMode(UnwindModeFromEnv());
  // absl::Mutex does not lock through pthread: its own hook, on request.
  const char* absl = std::getenv("LOCKPROF_ABSL_MUTEXES");
  if (absl != nullptr && std::strcmp(absl, "1") == 0) ProfileAbslMutexes();
}

}  // namespace

bool IsOwnCode(const void* caller) {
  return reinterpret_cast<uintptr_t>(caller) - g_own_lo.load(std::memory_order_relaxed) <
         g_own_len.load(std::memory_order_relaxed);
}

}  // namespace lockprof::interpose
