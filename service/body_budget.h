#pragma once
// BodyBudget: how many bytes of large request bodies the server holds in memory at once. A
// thousand clients that upload their updates together would otherwise each have their body
// read in full while the handlers, slowed by fsync, work through them one by one: the queue, not
// the work, would set the server's memory. A request whose declared body is large waits, its
// body unread, until the bodies ahead of it are handled (TCP's flow control then slows the
// sender); it is the same backpressure as Beast's and Kubernetes' max-in-flight limits.
//
// Acquisitions are granted first come, first served. One that asks for more than the whole
// budget is granted alone, when nothing else is held, so that no size waits forever.
//
// Thread safety: every method may be called from any thread; `granted` runs outside the lock,
// on the thread of acquire() (granted at once) or of the release() that made room.
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace mufl::service {

class BodyBudget {
 public:
  explicit BodyBudget(size_t capacity) : capacity_(capacity) {}

  // Runs `granted` when `bytes` fit beside what is held, now or later; each grant must be
  // matched by one release(bytes).
  void acquire(size_t bytes, std::function<void()> granted);
  void release(size_t bytes);

  // A grant held as a value: released when the last copy of the pointer goes.
  static std::shared_ptr<void> hold(BodyBudget& budget, size_t bytes) {
    return std::shared_ptr<void>(nullptr, [&budget, bytes](void*) { budget.release(bytes); });
  }

  size_t held() const;     // bytes granted and not released
  size_t waiting() const;  // acquisitions not yet granted

 private:
  bool fits_locked(size_t bytes) const { return held_ == 0 || held_ + bytes <= capacity_; }

  const size_t capacity_;
  mutable std::mutex mu_;
  size_t held_ = 0;
  struct Waiter {
    size_t bytes;
    std::function<void()> granted;
  };
  std::deque<Waiter> queue_;
};

}  // namespace mufl::service
