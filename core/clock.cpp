#include "core/clock.h"

#include <chrono>

namespace mufl {

int64_t SystemClock::now_unix_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t SystemClock::monotonic_ns() const {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

SystemClock& SystemClock::instance() {
  static auto* clock = new SystemClock();
  return *clock;
}

}  // namespace mufl
