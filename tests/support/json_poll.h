#pragma once
// JSON reads for end-to-end tests: one GET that must succeed, and a poll that waits for a
// condition with a deadline (no sleeps standing in for synchronisation).
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/http_client.h"

namespace mufl::testing {

// GET `target` with `token`; REQUIREs 200 and returns the parsed body.
nlohmann::json get(HttpClient& c, const std::string& target, const std::string& token);

// GETs `target` every 50 ms until `done` holds and returns that body; FAILs the test, with the
// last body, when `seconds` pass first.
nlohmann::json wait_for(HttpClient& c, const std::string& target, const std::string& token,
                        const std::function<bool(const nlohmann::json&)>& done, int seconds = 120);

}  // namespace mufl::testing
