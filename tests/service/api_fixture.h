#pragma once
// An App over an in-memory store, called without sockets, and helpers that check its
// problem+json replies: what the API tests share.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scheduler/placement/waiting.h"
#include "service/app.h"
#include "storage/sqlite_store.h"
#include "tenants/token.h"
#include "tests/support/temp_dir.h"

namespace mufl::test {

using nlohmann::json;
using namespace mufl::service;

inline const std::string kAdmin = "admin-token-for-tests";

struct Api {
  mufl::testing::TempDir dir;  // the leases' files
  ManualClock clock;
  SeededRandom rng{11};
  std::unique_ptr<storage::SqliteStore> store;
  std::unique_ptr<scheduler::WaitingExplainer> waiting;
  std::unique_ptr<App> app;

  // `explain_waiting`: the App says why groups wait (no devices, no placement policy).
  explicit Api(bool explain_waiting = false) {
    storage::StoreOptions o;
    o.path = ":memory:";
    auto s = storage::SqliteStore::open(o, clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    EnergyOptions energy;
    if (explain_waiting) {
      waiting = std::make_unique<scheduler::WaitingExplainer>(*store, nullptr, nullptr, false);
      energy.waiting = waiting.get();
    }
    app = std::make_unique<App>(*store, clock, rng, tenants::sha256_hex(kAdmin), tenants::ActivityHooks{}, energy,
                                EventStreamOptions{}, MetricsEndpointOptions{}, dir.path());
  }

  HttpResponse call(const std::string& method, const std::string& target, const std::string& body = "",
                    const std::string& token = "", std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpRequest r;
    r.method = method;
    REQUIRE(split_target(target, r.path, r.query));
    r.body = body;
    r.headers = std::move(headers);
    if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
    return app->handle(std::move(r));
  }

  // Creates a tenant and returns {id, token}.
  std::pair<std::string, std::string> tenant(const std::string& name, int max_active = 100) {
    auto r = call("POST", "/v1/tenants", json{{"name", name}, {"quotas", {{"max_active_activities", max_active}}}}.dump(),
                  kAdmin);
    REQUIRE(r.status == 201);
    json j = json::parse(r.body);
    return {j["id"], j["token"]};
  }

  // Everything the store holds, as one comparable value.
  json snapshot() {
    json s;
    s["tenants"] = json::parse(call("GET", "/v1/tenants", "", kAdmin).body);
    s["activities"] = json::parse(call("GET", "/v1/activities?limit=1000", "", kAdmin).body);
    return s;
  }
};

inline std::string header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

// The problem+json body of an error response, checked for its shape.
inline json problem(const HttpResponse& r, int status) {
  CHECK(r.status == status);
  CHECK(r.content_type == "application/problem+json");
  json j = json::parse(r.body);
  CHECK(j["status"] == status);
  CHECK(j["title"].is_string());
  CHECK(j["detail"].is_string());
  return j;
}

inline std::vector<std::string> error_fields(const json& problem) {
  std::vector<std::string> out;
  for (const auto& e : problem.value("errors", json::array())) out.push_back(e["field"]);
  return out;
}

inline bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace mufl::test
