// Copying a string that may be freed, or unmapped, while it is copied.
//
// A reader of another thread's lock record (the held-locks page, a stall
// report, a thread's exit) copies the names of the locks it lists. A name may
// die with the lock it names (a const array member of the object holding
// the lock, which lock_name.h allows) or with the plugin whose string it is,
// as soon as its holder lets go: a plain read then may fault. The copy goes
// through the kernel (process_vm_readv of this process), which reports a
// fault instead of delivering it: what could be read is kept.
#ifndef LOCKPROF_AGENT_BASE_FAULT_FREE_COPY_H_
#define LOCKPROF_AGENT_BASE_FAULT_FREE_COPY_H_

#include <cstddef>

namespace lockprof::agent {

// The most CopyNameFaultFree reads through the kernel.
inline constexpr size_t kMaxFaultFreeCopy = 8192;

// Copies the NUL-terminated name at `name` into `out` (`size` bytes, NUL
// included; at most kMaxFaultFreeCopy are read), cut between UTF-8
// characters where it does not fit. A name that cannot be read at all
// leaves `out` empty; one whose end cannot, what could be read. Where the
// kernel refuses the call (a seccomp filter), a plain copy.
void CopyNameFaultFree(const char* name, char* out, size_t size);

}  // namespace lockprof::agent

#endif  // LOCKPROF_AGENT_BASE_FAULT_FREE_COPY_H_
