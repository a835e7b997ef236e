// /debug/lockprof/lock-order and /debug/lockprof/held (agent/lock_order.h).
//
//   lock-order[?format=json]   every lock-order inversion found so far
//   held[?format=json]         the locks held and awaited right now
//   held?debug=0               the same as a pprof profile (one sample per
//                              waiting thread, value: time waited so far)
// Both answer while the application is deadlocked: they read per-thread
// records and take no lock an application thread can hold.
#ifndef LOCKPROF_SERVER_HANDLERS_DEADLOCK_HANDLERS_H_
#define LOCKPROF_SERVER_HANDLERS_DEADLOCK_HANDLERS_H_

#include <string_view>

#include "lockprof/server/handlers/http_types.h"

namespace lockprof::server {

inline constexpr std::string_view kLockOrderPath = "/debug/lockprof/lock-order";
inline constexpr std::string_view kHeldLocksPath = "/debug/lockprof/held";

Response HandleLockOrder(const Request& request);
Response HandleHeldLocks(const Request& request);

}  // namespace lockprof::server

#endif  // LOCKPROF_SERVER_HANDLERS_DEADLOCK_HANDLERS_H_
