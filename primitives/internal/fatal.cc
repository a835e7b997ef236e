#include "lockprof/primitives/internal/fatal.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace lockprof::internal {

void Fatal(const char* message) {
  // write(2) directly: stdio may be locked by the very thread that misused us.
  const char prefix[] = "lockprof: ";
  [[maybe_unused]] ssize_t r = write(2, prefix, sizeof(prefix) - 1);
  r = write(2, message, std::strlen(message));
  r = write(2, "\n", 1);
  std::abort();
}

}  // namespace lockprof::internal
