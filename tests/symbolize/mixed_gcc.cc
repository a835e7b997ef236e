// The GCC half of a library built by two compilers (symbolizer_units_test),
// compiled twice (LOCKPROF_PART 1 and 2) and linked on either side of the
// clang half: GCC lists each unit's code in .debug_aranges, clang emits no
// such section, and a lookup by .debug_aranges alone takes the clang code
// between them for the first GCC unit's.
#define LOCKPROF_CONCAT(a, b) a##b
#define LOCKPROF_NAME(part) LOCKPROF_CONCAT(gcc_part_function_, part)

extern "C" __attribute__((noinline)) int LOCKPROF_NAME(LOCKPROF_PART)(int x) {
  asm volatile("" : "+r"(x));
  return x + LOCKPROF_PART;
}
