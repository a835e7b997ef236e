// liblockprof_preload.so only: the threads lockprof itself starts (the
// admin server's workers, the uploader) run inside agent::RecorderScope for
// their whole life, so that nothing they lock is profiled - including the
// locks of the libraries they call (libdw's rwlocks while symbolizing, say),
// whose callers are not lockprof's own code.
//
// A thread is lockprof's when the code that asked for it is: std::thread's
// constructor is inlined into lockprof's code and calls libstdc++, which
// calls pthread_create, so the interposed pthread_create unwinds a few
// frames (CFI: libstdc++ has no frame pointers) and looks for lockprof's
// code among them. Other threads are started exactly as before.
#include <pthread.h>
#include <unwind.h>

#include <cstdlib>

#include "lockprof/agent/record/record.h"
#include "lockprof/primitives/interpose/interpose_common.h"
#include "lockprof/primitives/interpose/real_pthread.h"

namespace lockprof::interpose {
namespace {

constexpr int kFramesChecked = 4;

struct Start {
  void* (*fn)(void*);
  void* arg;
};

void* RunOwnThread(void* p) {
  const Start start = *static_cast<Start*>(p);
  free(p);
  agent::RecorderScope scope;
  return start.fn(start.arg);
}

struct Search {
  int frames = 0;
  bool own = false;
};

_Unwind_Reason_Code Visit(_Unwind_Context* ctx, void* arg) {
  auto* s = static_cast<Search*>(arg);
  // Frame 0 is the interposed pthread_create itself.
  if (s->frames++ > 0 && IsOwnCode(reinterpret_cast<const void*>(_Unwind_GetIP(ctx)))) {
    s->own = true;
    return _URC_END_OF_STACK;
  }
  return s->frames > kFramesChecked ? _URC_END_OF_STACK : _URC_NO_REASON;
}

}  // namespace
}  // namespace lockprof::interpose

LOCKPROF_INTERPOSE_ENTRY int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                                            void* (*fn)(void*), void* arg) {
  using namespace lockprof::interpose;
  Search search;
  _Unwind_Backtrace(Visit, &search);
  if (search.own) {
    if (auto* start = static_cast<Start*>(malloc(sizeof(Start)))) {
      *start = {fn, arg};
      const int r = Real().thread_create(thread, attr, RunOwnThread, start);
      if (r != 0) free(start);
      return r;
    }
  }
  return Real().thread_create(thread, attr, fn, arg);
}
