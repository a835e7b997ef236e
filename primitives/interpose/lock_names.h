// Names for locks that have none: the data symbol a lock lives in.
//
// A pthread lock has no name, but a global or static one lies inside a
// loaded object's data, where the object's symbol table names it: a
// `static std::mutex g_registry_mu;` is labelled lock=g_registry_mu (a member
// of a static object gets the object's name). Anything else (heap, stack,
// data no symbol covers, an object whose file can no longer be read or is
// no longer the one loaded: loaded_file.h) is "(unnamed)".
//
// Cost: a lookup in a lock-free table of names already found (tens of
// nanoseconds). A lock in an object's data seen for the first time costs a
// scan of the object's symbol tables from its file (microseconds to a
// millisecond; once per lock, up to about kMaxNamedLocks locks, then
// "(unnamed)" for new ones, without a scan). A lock outside every object (heap, stack) costs a
// lock-free _dl_find_object() each time. Never call it inside a critical
// section: the interposer calls it before a waiter sleeps and after a
// release.
//
// It runs inside the application's lock calls, so it takes no lock the
// application can hold: not the dynamic loader's (no dladdr: a thread in
// dlopen() holds it while constructors run, which may wait for the caller's
// locks), and no allocation (the caller may be inside its own malloc,
// holding the allocator's locks), except to demangle the name of a
// function's static lock or a template's member, the first time. It leaves
// errno alone and is no cancellation point.
//
// Thread-safety: thread-safe; must be called inside an agent::RecorderScope
// (a demangling may allocate, and an allocator's own locks must not be
// profiled). The names found in a library are forgotten when it is
// unloaded (ForgetLockNamesIn), so that another object loaded at its
// addresses gets its own.
#ifndef LOCKPROF_PRIMITIVES_INTERPOSE_LOCK_NAMES_H_
#define LOCKPROF_PRIMITIVES_INTERPOSE_LOCK_NAMES_H_

#include <cstdint>

namespace lockprof::interpose {

inline constexpr int kMaxNamedLocks = 4096;
inline constexpr char kUnnamedLock[] = "(unnamed)";

// The label for the lock at `lock`: a string with static storage duration.
const char* LockName(const void* lock);

// True if `lock` lies inside an object loaded now (a global or static
// lock): memory that is the lock's for as long as its object stays loaded,
// unlike the heap's and the stack's, which are reused without a call the
// interposer sees (std::mutex's destructor makes none). A lock-free
// _dl_find_object(); no RecorderScope needed.
bool InLoadedObject(const void* lock);

// The object at [begin, end) was unloaded: the names found there are looked
// up again when next asked for.
void ForgetLockNamesIn(const void* begin, const void* end);

// Around a dlclose() (interpose_dlclose.cc): a lookup reads the loaded
// image and the loader's record of it, so the unload waits for the lookups
// under way (a millisecond at most), and lookups that start meanwhile give
// up (the lock is "(unnamed)" this once; it is named at its next use). A
// thread may name a lock after releasing it, and the releasing thread's
// unlock is all another thread needs to take that lock and unload its
// object.
void BeginUnload();
void EndUnload();

// Object files read so far to name locks (the costly part of a lookup).
uint64_t LockNameFileScans();

}  // namespace lockprof::interpose

#endif  // LOCKPROF_PRIMITIVES_INTERPOSE_LOCK_NAMES_H_
