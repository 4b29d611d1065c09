#include "service/event_retention.h"

#include <spdlog/spdlog.h>

namespace mufl::service {

EventRetention::EventRetention(storage::EventStore& store, const Clock& clock, std::chrono::seconds retention,
                               std::chrono::seconds every)
    : store_(store), clock_(clock), retention_(retention), every_(every) {}

EventRetention::~EventRetention() { stop(); }

Result<int64_t> EventRetention::prune_once() {
  const int64_t cutoff = clock_.now_unix_ms() - static_cast<int64_t>(retention_.count()) * 1000;
  auto pruned = store_.prune_events(cutoff);
  if (!pruned.ok())
    spdlog::warn("event retention: cannot prune: {}", pruned.status().to_string());
  else if (*pruned > 0)
    spdlog::info("event retention: pruned {} events older than {} s", *pruned, retention_.count());
  return pruned;
}

void EventRetention::start() {
  prune_once();
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    // A timed wait is the schedule here, not a stand-in for synchronisation: stop() wakes it.
    while (!cv_.wait_for(lock, every_, [this] { return stopping_; })) {
      lock.unlock();
      prune_once();
      lock.lock();
    }
  });
}

void EventRetention::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mufl::service
