// The uploader's log lines, kept for a test to read: set
// UploaderOptions::log = CaptureLog, read them with Logged().
#ifndef LOCKPROF_TESTS_UPLOADER_LOG_H_
#define LOCKPROF_TESTS_UPLOADER_LOG_H_

#include <mutex>
#include <string>
#include <vector>

namespace lockprof::testing {

class UploaderLog {
 public:
  static void Capture(const std::string& message) {
    std::lock_guard<std::mutex> l(mu());
    lines().push_back(message);
  }
  static std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> l(mu());
    return lines();
  }
  static void Clear() {
    std::lock_guard<std::mutex> l(mu());
    lines().clear();
  }

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::string>& lines() {
    static std::vector<std::string> v;
    return v;
  }
};

inline void CaptureLog(const std::string& message) { UploaderLog::Capture(message); }
inline std::vector<std::string> Logged() { return UploaderLog::Lines(); }

}  // namespace lockprof::testing

#endif  // LOCKPROF_TESTS_UPLOADER_LOG_H_
