// Uses lockprof as a user would (installed, or through add_subdirectory):
// contends on a lockprof::Mutex, runs the public headers' inline fast paths
// (fast_paths.cc), and prints the mutex profile's text form. With `serve`,
// it then prints the port of the admin server that LOCKPROF_ADMIN_ADDR
// started with the program, and serves until its standard input closes.
// With `plugin <path>`, it first loads tests/lifecycle/plugin.cc built as a
// library that does not link lockprof (it takes lockprof's symbols from the
// process) and runs it.
#include <dlfcn.h>
#include <lockprof/lockprof.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

bool RunFastPaths();

bool RunPlugin(const char* path) {
  void* plugin = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (plugin == nullptr) {
    std::cerr << "consumer: " << dlerror() << "\n";
    return false;
  }
  using RunFn = int64_t (*)(int threads, int iterations);
  auto run = reinterpret_cast<RunFn>(dlsym(plugin, "lockprof_test_plugin_run"));
  // Stays loaded: unloading is dlopen_test's subject, not this program's.
  return run != nullptr && run(4, 1000) == 4 * 1000;
}

int main(int argc, char** argv) {
  bool serve = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "serve") == 0) {
      serve = true;
    } else if (std::strcmp(argv[i], "plugin") == 0 && i + 1 < argc) {
      if (!RunPlugin(argv[++i])) return 1;
    }
  }
  lockprof::SetMutexProfileFraction(1);
  lockprof::Mutex mu{"consumer"};
  // The threads start contending together: on a loaded machine one created
  // late could otherwise find the others done, and the profile empty.
  constexpr int kThreads = 3;
  std::atomic<int> running{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      running.fetch_add(1);
      while (running.load() < kThreads) std::this_thread::yield();
      for (int i = 0; i < 20; ++i) {
        std::lock_guard<lockprof::Mutex> lock(mu);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  for (auto& t : threads) t.join();
  if (!RunFastPaths()) {
    std::cerr << "consumer: the fast paths did not add up\n";
    return 1;
  }
  if (!lockprof::WriteProfile("mutex", 1, std::cout).ok()) return 1;
  if (serve) {
    if (lockprof::AdminServerPort() == 0) {
      std::cerr << "consumer: no admin server (LOCKPROF_ADMIN_ADDR unset?)\n";
      return 1;
    }
    std::cout << "serving on port " << lockprof::AdminServerPort() << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
    }
  }
  return 0;
}
