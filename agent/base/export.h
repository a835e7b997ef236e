// LOCKPROF_EXPORT marks what the shared library, liblockprof.so, exports.
//
// A shared build (BUILD_SHARED_LIBS=ON) compiles lockprof with
// -fvisibility=hidden -fvisibility-inlines-hidden: only declarations marked
// LOCKPROF_EXPORT are visible outside the library. They are the public API
// (the headers at each module's root, which lockprof.h includes) and the few
// internal functions and variables that the public headers' inline fast
// paths reach (the sampling rates, the thread's state, the clock, the record
// entry points of agent/record/). Everything else (tables, profile building,
// symbolization, the HTTP server) stays inside the library.
//
// Mark a whole class when its out-of-line members are API; a free function
// or an extern variable where it is declared. In the static build (the
// default) lockprof is compiled with default visibility and the macro
// changes nothing.
#ifndef LOCKPROF_AGENT_BASE_EXPORT_H_
#define LOCKPROF_AGENT_BASE_EXPORT_H_

#define LOCKPROF_EXPORT __attribute__((visibility("default")))

#endif  // LOCKPROF_AGENT_BASE_EXPORT_H_
