// Two libraries of the same size and layout for symbolizer_units_test: one
// is unloaded and the other loaded where it was.
extern "C" __attribute__((noinline)) int alpha_function(int x) {
  asm volatile("" : "+r"(x));  // Keeps the body from being folded away.
  return x * 3 + 1;
}
