#include "tests/support/json_poll.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

namespace mufl::testing {

nlohmann::json get(HttpClient& c, const std::string& target, const std::string& token) {
  auto r = c.get(target, token);
  INFO(target << " → " << r.body);
  REQUIRE(r.status == 200);
  return nlohmann::json::parse(r.body);
}

nlohmann::json get_all_items(HttpClient& c, const std::string& target, const std::string& token, int limit) {
  nlohmann::json items = nlohmann::json::array();
  std::string cursor;
  for (;;) {
    const auto page = get(c, target + "?limit=" + std::to_string(limit) + (cursor.empty() ? "" : "&cursor=" + cursor), token);
    for (const auto& item : page.at("items")) items.push_back(item);
    if (!page.at("next_cursor").is_string()) return items;
    cursor = page["next_cursor"].get<std::string>();
  }
}

nlohmann::json wait_for(HttpClient& c, const std::string& target, const std::string& token,
                        const std::function<bool(const nlohmann::json&)>& done, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  nlohmann::json j;
  while (std::chrono::steady_clock::now() < deadline) {
    j = get(c, target, token);
    if (done(j)) return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL(target << " did not get there in " << seconds << " s: " << j.dump());
  return j;
}

}  // namespace mufl::testing
