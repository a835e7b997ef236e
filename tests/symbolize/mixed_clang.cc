// The other half of a library built by two compilers
// (symbolizer_units_test), built by clang: no .debug_aranges entry.
static inline __attribute__((always_inline)) int clang_inlined_step(int x) {
  asm volatile("" : "+r"(x));
  return x * 5;
}

extern "C" __attribute__((noinline)) int clang_half_function(int x) {
  return clang_inlined_step(x) + 2;
}
