#pragma once
// EventRetention: the background task that keeps the events table to --event-retention
// (docs/events.md): it prunes events older than the retention at start() and then every
// `every`, on its own thread, until stop().
//
// Thread safety: start() and stop() from one thread.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "storage/store.h"

namespace mufl::service {

class EventRetention {
 public:
  // `store` and `clock` must outlive it.
  EventRetention(storage::EventStore& store, const Clock& clock, std::chrono::seconds retention,
                 std::chrono::seconds every = std::chrono::hours(1));
  ~EventRetention();  // stop()
  EventRetention(const EventRetention&) = delete;
  EventRetention& operator=(const EventRetention&) = delete;

  // Prunes once on the calling thread (so start-up leaves no stale events), then starts the thread.
  void start();
  // Wakes the thread and joins it. Idempotent.
  void stop();
  // One pruning pass now: deletes events older than now − retention; returns how many went.
  Result<int64_t> prune_once();

 private:
  storage::EventStore& store_;
  const Clock& clock_;
  const std::chrono::seconds retention_, every_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mufl::service
