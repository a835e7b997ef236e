// lockprof: contention profiling for C++ services.
//
// Swap std::mutex for lockprof::Mutex (and friends), start the admin
// endpoint, and read where threads wait with the tools you already use:
//
//   #include <lockprof/lockprof.h>
//
//   lockprof::Mutex mu{"cache.main"};   // was: std::mutex mu;
//   int main() {
//     lockprof::StartAdminServer();     // http://127.0.0.1:6060/debug/pprof/
//     ...
//   }
//
//   $ go tool pprof -top http://127.0.0.1:6060/debug/pprof/mutex
//
// This header includes every public lockprof header.
#ifndef LOCKPROF_LOCKPROF_H_
#define LOCKPROF_LOCKPROF_H_

#include "lockprof/agent/delta_profiles.h"
#include "lockprof/agent/labels.h"
#include "lockprof/agent/lock_order.h"
#include "lockprof/agent/metrics.h"
#include "lockprof/agent/profiles.h"
#include "lockprof/agent/sampling.h"
#include "lockprof/agent/slow_acquire.h"
#include "lockprof/agent/thread_lock_wait.h"
#include "lockprof/agent/uploader.h"
#include "lockprof/primitives/absl_mutex_profile.h"
#include "lockprof/primitives/atomic.h"
#include "lockprof/primitives/condvar.h"
#include "lockprof/primitives/cow_ptr.h"
#include "lockprof/primitives/lock_name.h"
#include "lockprof/primitives/mutex.h"
#include "lockprof/primitives/sharded_counter.h"
#include "lockprof/primitives/sharded_map.h"
#include "lockprof/primitives/shared_mutex.h"
#include "lockprof/server/admin_handler.h"
#include "lockprof/server/admin_server.h"

#endif  // LOCKPROF_LOCKPROF_H_
