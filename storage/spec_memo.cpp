#include "storage/spec_memo.h"

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace mufl::storage {
namespace {

Result<ActivitySpec> parse_spec(std::string_view text, std::string_view activity_id) {
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Status::internal("activity " + std::string(activity_id) + " has a corrupt spec");
  try {
    return spec_from_json(json);
  } catch (const nlohmann::json::exception& e) {
    return Status::internal("activity " + std::string(activity_id) + " has a corrupt spec: " + e.what());
  }
}

// Hashes std::string keys and std::string_view probes alike, so that a lookup does not copy
// the text (C++20 heterogeneous lookup).
struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class SpecMemo {
 public:
  std::shared_ptr<const ActivitySpec> find(std::string_view text) const {
    std::shared_lock lock(mu_);
    auto it = specs_.find(text);
    return it == specs_.end() ? nullptr : it->second;
  }
  void put(std::string_view text, std::shared_ptr<const ActivitySpec> spec) {
    std::unique_lock lock(mu_);
    if (specs_.size() >= kSpecMemoEntries) specs_.clear();
    specs_.try_emplace(std::string(text), std::move(spec));  // a no-op when another thread put it meanwhile
  }

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const ActivitySpec>, TextHash, std::equal_to<>> specs_;
};

SpecMemo& memo() {
  static SpecMemo m;
  return m;
}

}  // namespace

Result<ActivitySpec> parse_stored_spec(std::string_view text, std::string_view activity_id) {
  if (auto hit = memo().find(text)) return *hit;
  auto spec = parse_spec(text, activity_id);
  if (spec.ok()) memo().put(text, std::make_shared<const ActivitySpec>(*spec));
  return spec;
}

}  // namespace mufl::storage
