// Uses lockprof as a user would (installed, or through add_subdirectory):
// contends on a lockprof::Mutex, runs the public headers' inline fast paths
// (fast_paths.cc), and prints the mutex profile's text form. With `serve`,
// it then prints the port of the admin server that LOCKPROF_ADMIN_ADDR
// started with the program, and serves until its standard input closes.
#include <lockprof/lockprof.h>

#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

bool RunFastPaths();

int main(int argc, char** argv) {
  lockprof::SetMutexProfileFraction(1);
  lockprof::Mutex mu{"consumer"};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
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
  if (argc > 1 && std::strcmp(argv[1], "serve") == 0) {
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
