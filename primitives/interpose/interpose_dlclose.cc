// dlclose, watched. The addresses of an object that dlclose() unloads are
// reused by the next object loaded there, whose global and static locks
// must not inherit the names (lock_names.h) and the lock-order edges
// (agent/deadlock/lock_graph.h) found for the old one's: a plugin that is
// reloaded, or replaced by another, would otherwise be reported under the
// old names, with inversions against locks that no longer exist.
//
// The objects loaded before the call are listed (dl_iterate_phdr, which
// neither allocates nor takes a lock that the dlclose() below holds across
// a destructor), and those no longer loaded after it, the handle's
// dependencies included, are forgotten.
#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "lockprof/agent/record/lock_lifetime.h"
#include "lockprof/primitives/internal/fatal.h"
#include "lockprof/primitives/interpose/interpose_common.h"
#include "lockprof/primitives/interpose/lock_names.h"

namespace lockprof::interpose {
namespace {

struct Extent {
  uintptr_t begin, end;
};

// Bounded, on the caller's stack: objects past this many are not watched
// (they keep their names until looked up again: the old behaviour).
constexpr int kMaxWatched = 512;

struct Loaded {
  Extent extents[kMaxWatched];
  int count = 0;
};

int ListObject(dl_phdr_info* info, size_t, void* data) {
  auto* loaded = static_cast<Loaded*>(data);
  if (loaded->count == kMaxWatched) return 1;
  uintptr_t begin = UINTPTR_MAX, end = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    begin = std::min<uintptr_t>(begin, info->dlpi_addr + ph.p_vaddr);
    end = std::max<uintptr_t>(end, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
  }
  if (begin < end) loaded->extents[loaded->count++] = {begin, end};
  return 0;
}

using DlcloseFn = int (*)(void*);

DlcloseFn RealDlclose() {
  static std::atomic<DlcloseFn> real{nullptr};
  DlcloseFn fn = real.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<DlcloseFn>(dlsym(RTLD_NEXT, "dlclose"));
    if (fn == nullptr) internal::Fatal("dlclose: the real function cannot be found");
    real.store(fn, std::memory_order_release);
  }
  return fn;
}

}  // namespace
}  // namespace lockprof::interpose

// Named by the link-time form's -u (primitives/interpose/CMakeLists.txt), so
// that this object is linked even where a sanitizer's runtime defines a
// weak dlclose of its own, which -u dlclose alone would settle for.
extern "C" __attribute__((visibility("default"))) const int lockprof_interpose_dlclose = 1;

LOCKPROF_INTERPOSE_ENTRY int dlclose(void* handle) {
  using namespace lockprof::interpose;
  const DlcloseFn real = RealDlclose();
  Loaded before;
  dl_iterate_phdr(ListObject, &before);
  BeginUnload();  // No lock naming reads the image while it goes.
  const int r = real(handle);
  EndUnload();
  if (r != 0) return r;
  for (int i = 0; i < before.count; ++i) {
    const auto* begin = reinterpret_cast<const void*>(before.extents[i].begin);
    const auto* end = reinterpret_cast<const void*>(before.extents[i].end);
    if (InLoadedObject(begin)) continue;
    ForgetLockNamesIn(begin, end);
    lockprof::agent::ForgetLocksIn(begin, end);
  }
  return r;
}
