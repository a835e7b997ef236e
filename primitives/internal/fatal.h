// Fatal misuse reports, as Go's "sync: unlock of unlocked mutex".
#ifndef LOCKPROF_PRIMITIVES_INTERNAL_FATAL_H_
#define LOCKPROF_PRIMITIVES_INTERNAL_FATAL_H_

#include "lockprof/agent/base/export.h"

namespace lockprof::internal {

// Writes "lockprof: <message>" to stderr (no allocation, no lock) and aborts.
[[noreturn]] LOCKPROF_EXPORT void Fatal(const char* message);

}  // namespace lockprof::internal

#endif  // LOCKPROF_PRIMITIVES_INTERNAL_FATAL_H_
