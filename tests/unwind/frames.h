// Call chains of different frame shapes, built without frame pointers
// (frames.cc), for cfi_unwind_test: each calls `leaf` at its bottom.
#ifndef LOCKPROF_TESTS_UNWIND_FRAMES_H_
#define LOCKPROF_TESTS_UNWIND_FRAMES_H_

namespace lockprof::testing {

using Leaf = void (*)();

// `depth` nested calls of functions whose frames keep a few locals.
int NestSmallFrames(int depth, Leaf leaf);
// The same with a 64 KiB array in each frame (CFA offsets beyond 16 bits).
int NestLargeFrames(int depth, Leaf leaf);
// A variable-length array per frame: the CFA is computed from rbp.
int NestDynamicFrames(int depth, int bytes, Leaf leaf);
// `leaf` called from qsort's comparison (glibc's code in between).
int ThroughQsort(Leaf leaf);

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_UNWIND_FRAMES_H_
