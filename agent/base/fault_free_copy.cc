#include "lockprof/agent/base/fault_free_copy.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string_view>

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
    // Read in parts that each end where a page ends: the kernel stops at the
    // first part it cannot read, so a name whose end lies on a page that is
    // gone comes back cut there, its start kept.
    const size_t want = std::min(size, kMaxFaultFreeCopy);
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    iovec remote[kMaxFaultFreeCopy / 4096 + 2];
    int parts = 0;
    for (size_t done = 0; done < want && parts < int(std::size(remote)); ++parts) {
      const uintptr_t at = reinterpret_cast<uintptr_t>(name) + done;
      const size_t part = std::min<size_t>(want - done, page - at % page);
      remote[parts] = {const_cast<char*>(name) + done, part};
      done += part;
    }
    iovec local{out, want};
    const ssize_t n = process_vm_readv(getpid(), &local, 1, remote, parts, 0);
    if (n >= 0) {
      const size_t got = size_t(n);
      if (strnlen(out, got) < got) return;  // The name and its terminator.
      // No terminator read: the name is longer than `size`, or its next page
      // is gone. Cut between characters, with room for the terminator.
      out[Utf8PrefixBytes(std::string_view(out, got), std::min(got, size - 1))] = '\0';
      return;
    }
    if (errno == EFAULT) return;  // Nothing left to read.
    g_kernel_copies.store(false, std::memory_order_relaxed);
  }
  KeepName(name, out, size);
}

}  // namespace lockprof::agent
