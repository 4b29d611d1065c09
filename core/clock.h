#pragma once
// Clock: the only way mufl code reads wall or monotonic time, so tests can run on fake time.
// Thread safety: implementations are safe to call from any thread.
#include <atomic>
#include <cstdint>

namespace mufl {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in milliseconds since the Unix epoch (UTC). Used for timestamps we store.
  virtual int64_t now_unix_ms() const = 0;
  // Monotonic time in nanoseconds from an arbitrary origin. Used for durations.
  virtual int64_t monotonic_ns() const = 0;
};

// The process clock (std::chrono::system_clock and steady_clock).
class SystemClock final : public Clock {
 public:
  int64_t now_unix_ms() const override;
  int64_t monotonic_ns() const override;
  // A shared instance; never destroyed.
  static SystemClock& instance();
};

// A clock that moves only when told; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_unix_ms = 1'767'225'600'000)  // 2026-01-01T00:00:00Z
      : unix_ms_(start_unix_ms) {}
  int64_t now_unix_ms() const override { return unix_ms_.load(); }
  int64_t monotonic_ns() const override { return mono_ns_.load(); }
  void advance_ms(int64_t ms) {
    unix_ms_ += ms;
    mono_ns_ += ms * 1'000'000;
  }

 private:
  std::atomic<int64_t> unix_ms_;
  std::atomic<int64_t> mono_ns_{0};
};

}  // namespace mufl
