#include "federation/work_board.h"

#include <algorithm>

namespace mufl::federation {

WorkBoard::WorkBoard() : timer_([this] { run_timer(); }) {}

WorkBoard::~WorkBoard() {
  shutdown();
  timer_.join();
}

void WorkBoard::offer(const std::string& client_id, const std::string& lease_id, std::string assignment_json) {
  std::vector<Callback> wake;
  std::string json_for_waiters;
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = leases_.try_emplace(lease_id, Lease{next_order_, client_id, ""});
    if (inserted) ++next_order_;
    it->second.client_id = client_id;
    it->second.assignment_json = std::move(assignment_json);
    json_for_waiters = *oldest_locked(client_id);
    for (auto w = waiters_.begin(); w != waiters_.end();) {
      if (w->second.client_id != client_id) {
        ++w;
        continue;
      }
      wake.push_back(std::move(w->second.done));
      w = waiters_.erase(w);
    }
  }
  for (auto& done : wake) done(json_for_waiters);
}

void WorkBoard::withdraw(const std::string& lease_id) {
  std::lock_guard lock(mu_);
  leases_.erase(lease_id);
}

std::optional<std::string> WorkBoard::peek(const std::string& client_id) const {
  std::lock_guard lock(mu_);
  return oldest_locked(client_id);
}

std::optional<std::string> WorkBoard::oldest_locked(const std::string& client_id) const {
  const Lease* best = nullptr;
  for (const auto& [id, lease] : leases_)
    if (lease.client_id == client_id && (!best || lease.order < best->order)) best = &lease;
  if (!best) return std::nullopt;
  return best->assignment_json;
}

WorkBoard::WaiterId WorkBoard::wait(const std::string& client_id, std::chrono::milliseconds wait, Callback done) {
  std::optional<std::string> now;
  {
    std::lock_guard lock(mu_);
    now = oldest_locked(client_id);
    if (!now && !stopped_ && wait.count() > 0) {
      const WaiterId id = next_waiter_++;
      waiters_.emplace(id, Waiter{client_id, std::chrono::steady_clock::now() + wait, std::move(done)});
      timer_cv_.notify_one();
      return id;
    }
  }
  done(std::move(now));
  return 0;
}

void WorkBoard::cancel(WaiterId id) {
  Callback done;
  {
    std::lock_guard lock(mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    done = std::move(it->second.done);
    waiters_.erase(it);
  }
  done(std::nullopt);
}

void WorkBoard::shutdown() {
  std::map<WaiterId, Waiter> all;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    all.swap(waiters_);
  }
  timer_cv_.notify_all();
  for (auto& [id, w] : all) w.done(std::nullopt);
}

size_t WorkBoard::waiting() const {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

size_t WorkBoard::open_leases() const {
  std::lock_guard lock(mu_);
  return leases_.size();
}

void WorkBoard::run_timer() {
  std::unique_lock lock(mu_);
  while (!stopped_) {
    auto earliest = std::chrono::steady_clock::time_point::max();
    for (const auto& [id, w] : waiters_) earliest = std::min(earliest, w.deadline);
    if (earliest == std::chrono::steady_clock::time_point::max())
      timer_cv_.wait(lock);
    else
      timer_cv_.wait_until(lock, earliest);
    const auto now = std::chrono::steady_clock::now();
    std::vector<Callback> expired;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      expired.push_back(std::move(it->second.done));
      it = waiters_.erase(it);
    }
    if (expired.empty()) continue;
    lock.unlock();
    for (auto& done : expired) done(std::nullopt);
    lock.lock();
  }
}

}  // namespace mufl::federation
