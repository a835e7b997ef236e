// Uses the installed headers and libraries: contends on a lockprof::Mutex and
// prints the mutex profile's text form.
#include <lockprof/lockprof.h>

#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

int main() {
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
  return lockprof::WriteProfile("mutex", 1, std::cout).ok() ? 0 : 1;
}
