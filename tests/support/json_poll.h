#pragma once
// JSON reads for end-to-end tests: one GET that must succeed, every page of a list, and a poll that waits for a
// condition with a deadline (no sleeps standing in for synchronisation).
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/http_client.h"

namespace mufl::testing {

// GET `target` with `token`; REQUIREs 200 and returns the parsed body.
nlohmann::json get(HttpClient& c, const std::string& target, const std::string& token);

// Every item of a paginated list: GETs `target` (no query of its own) a page of `limit` items
// at a time, following next_cursor until it is null; REQUIREs 200 for every page. The items of
// all pages, in the API's order.
nlohmann::json get_all_items(HttpClient& c, const std::string& target, const std::string& token, int limit = 1000);

// GETs `target` every 50 ms until `done` holds and returns that body; FAILs the test, with the
// last body, when `seconds` pass first.
nlohmann::json wait_for(HttpClient& c, const std::string& target, const std::string& token,
                        const std::function<bool(const nlohmann::json&)>& done, int seconds = 120);

}  // namespace mufl::testing
