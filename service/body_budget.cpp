#include "service/body_budget.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace mufl::service {

void BodyBudget::acquire(size_t bytes, std::function<void()> granted) {
  {
    std::lock_guard lock(mu_);
    if (!queue_.empty() || !fits_locked(bytes)) {  // behind the ones already waiting
      queue_.push_back({bytes, std::move(granted)});
      return;
    }
    held_ += bytes;
  }
  granted();
}

void BodyBudget::release(size_t bytes) {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mu_);
    held_ -= std::min(bytes, held_);
    while (!queue_.empty() && fits_locked(queue_.front().bytes)) {
      held_ += queue_.front().bytes;
      ready.push_back(std::move(queue_.front().granted));
      queue_.pop_front();
    }
  }
  for (auto& go : ready) go();
}

size_t BodyBudget::held() const {
  std::lock_guard lock(mu_);
  return held_;
}

size_t BodyBudget::waiting() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

}  // namespace mufl::service
