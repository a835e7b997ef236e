// liblockprof.so's own translation unit. The library's code is the modules'
// archives, linked whole; this file gives the target a source (CMake needs
// one), and checks that lockprof.h compiles on its own.
#include "lockprof/lockprof.h"
