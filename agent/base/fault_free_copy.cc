#include "lockprof/agent/base/fault_free_copy.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "lockprof/agent/base/utf8.h"

namespace lockprof::agent {

namespace {

// Cleared once the kernel refuses process_vm_readv (ENOSYS, EPERM).
std::atomic<bool> g_kernel_copies{true};

}  // namespace

void CopyNameFaultFree(const char* name, char* out, size_t size) {
  if (size == 0) return;
  out[0] = '\0';
  if (name == nullptr || size == 1) return;
  if (g_kernel_copies.load(std::memory_order_relaxed)) {
    char bytes[256];
    const size_t want = std::min(size - 1, sizeof bytes - 1);
    iovec local{bytes, want};
    // Split where the name's first page ends: the kernel stops at the first
    // part it cannot read, so a name whose end lies on a page that is gone
    // comes back cut there, its start kept.
    const uintptr_t start = reinterpret_cast<uintptr_t>(name);
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const size_t first = std::min<size_t>(want, page - start % page);
    iovec remote[2] = {{const_cast<char*>(name), first},
                       {const_cast<char*>(name) + first, want - first}};
    const ssize_t n = process_vm_readv(getpid(), &local, 1, remote, want > first ? 2 : 1, 0);
    if (n >= 0) {
      bytes[n] = '\0';
      KeepName(bytes, out, size);
      return;
    }
    if (errno == EFAULT) return;  // Nothing left to read.
    g_kernel_copies.store(false, std::memory_order_relaxed);
  }
  KeepName(name, out, size);
}

}  // namespace lockprof::agent
