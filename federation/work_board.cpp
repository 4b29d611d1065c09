#include "federation/work_board.h"

#include <algorithm>

namespace mufl::federation {

WorkBoard::WorkBoard() : timer_([this] { run_timer(); }) {}

WorkBoard::~WorkBoard() {
  shutdown();
  timer_.join();
}

void WorkBoard::offer(const std::string& client_id, const std::string& lease_id, std::string assignment_json) {
  std::vector<Offer> one;
  one.push_back({client_id, lease_id, std::move(assignment_json)});
  offer_all(std::move(one));
}

void WorkBoard::offer_all(std::vector<Offer> offers) {
  std::vector<std::pair<Callback, std::string>> wake;  // each waiter and its client's oldest lease
  {
    std::lock_guard lock(mu_);
    for (auto& o : offers) {
      auto [it, inserted] = leases_.try_emplace(o.lease_id, Lease{next_order_, o.client_id, ""});
      if (inserted) ++next_order_;
      if (it->second.client_id != o.client_id) {  // offered again to another client: moves
        by_client_[it->second.client_id].erase(it->second.order);
        it->second.client_id = o.client_id;
      }
      by_client_[o.client_id][it->second.order] = o.lease_id;
      it->second.assignment_json = std::move(o.assignment_json);
      for (auto range = waiting_.equal_range(o.client_id); range.first != range.second;) {
        const WaiterId id = range.first->second;
        ++range.first;  // take_locked erases the current entry
        wake.emplace_back(take_locked(waiters_.find(id)), *oldest_locked(o.client_id));
      }
    }
  }
  for (auto& [done, json] : wake) done(std::move(json));
}

void WorkBoard::withdraw(const std::string& lease_id) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  auto client = by_client_.find(it->second.client_id);
  if (client != by_client_.end()) {
    client->second.erase(it->second.order);
    if (client->second.empty()) by_client_.erase(client);
  }
  leases_.erase(it);
}

std::optional<std::string> WorkBoard::peek(const std::string& client_id) const {
  std::lock_guard lock(mu_);
  return oldest_locked(client_id);
}

std::optional<std::string> WorkBoard::oldest_locked(const std::string& client_id) const {
  auto client = by_client_.find(client_id);
  if (client == by_client_.end() || client->second.empty()) return std::nullopt;
  return leases_.at(client->second.begin()->second).assignment_json;
}

WorkBoard::Callback WorkBoard::take_locked(std::map<WaiterId, Waiter>::iterator it) {
  const WaiterId id = it->first;
  for (auto range = waiting_.equal_range(it->second.client_id); range.first != range.second; ++range.first)
    if (range.first->second == id) {
      waiting_.erase(range.first);
      break;
    }
  for (auto range = deadlines_.equal_range(it->second.deadline); range.first != range.second; ++range.first)
    if (range.first->second == id) {
      deadlines_.erase(range.first);
      break;
    }
  Callback done = std::move(it->second.done);
  waiters_.erase(it);
  return done;
}

WorkBoard::WaiterId WorkBoard::wait(const std::string& client_id, std::chrono::milliseconds wait, Callback done) {
  std::optional<std::string> now;
  {
    std::lock_guard lock(mu_);
    now = oldest_locked(client_id);
    if (!now && !stopped_ && wait.count() > 0) {
      const WaiterId id = next_waiter_++;
      const TimePoint deadline = std::chrono::steady_clock::now() + wait;
      const bool earliest = deadlines_.empty() || deadline < deadlines_.begin()->first;
      waiters_.emplace(id, Waiter{client_id, deadline, std::move(done)});
      waiting_.emplace(client_id, id);
      deadlines_.emplace(deadline, id);
      if (earliest) timer_cv_.notify_one();  // the timer sleeps until the earliest deadline
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
    done = take_locked(it);
  }
  done(std::nullopt);
}

void WorkBoard::shutdown() {
  std::map<WaiterId, Waiter> all;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    all.swap(waiters_);
    waiting_.clear();
    deadlines_.clear();
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
    if (deadlines_.empty())
      timer_cv_.wait(lock);
    else
      timer_cv_.wait_until(lock, deadlines_.begin()->first);
    const auto now = std::chrono::steady_clock::now();
    std::vector<Callback> expired;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now)
      expired.push_back(take_locked(waiters_.find(deadlines_.begin()->second)));
    if (expired.empty()) continue;
    lock.unlock();
    for (auto& done : expired) done(std::nullopt);
    lock.lock();
  }
}

}  // namespace mufl::federation
