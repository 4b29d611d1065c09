#include "storage/detail_cache.h"

#include <mutex>

namespace mufl::storage {

std::optional<ActivityDetail> DetailCache::find(std::string_view id) const {
  std::shared_ptr<const ActivityDetail> detail;
  {
    std::shared_lock lock(mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.generation == generation()) detail = it->second.detail;
  }
  if (!detail) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  return *detail;  // the copy is made outside the lock
}

void DetailCache::put(const std::string& id, uint64_t generation, const ActivityDetail& detail) {
  if (capacity_ == 0 || generation != this->generation()) return;
  auto copy = std::make_shared<const ActivityDetail>(detail);
  std::unique_lock lock(mu_);
  if (entries_.size() >= capacity_ && !entries_.count(id)) entries_.clear();
  entries_.insert_or_assign(id, Entry{generation, std::move(copy)});
}

}  // namespace mufl::storage
