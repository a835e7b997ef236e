// A shared library for symbolizer_test: not linked into the test, so its code
// is mapped only once the test dlopen()s it. Built with the project, so the
// test needs nothing from the system it runs on.
extern "C" __attribute__((noinline)) int lockprof_test_dso_function(int x) {
  asm volatile("" : "+r"(x));  // Keeps the body from being folded away.
  return x * 3 + 1;
}
