// The energy routes in one process (App over an in-memory store and an inventory of model-metered
// devices on fake time): GET /v1/devices, drain and resume, GET /v1/usage, energy budgets in the
// tenant quotas, an activity's energy and pause reason, and the energy series in /metrics. Every
// kind of bad input gets its problem+json and changes nothing.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "scheduler/energy/model_meter.h"
#include "service/app.h"
#include "storage/sqlite_store.h"
#include "tenants/token.h"

using namespace mufl;
using namespace mufl::service;
using nlohmann::json;

namespace {

const std::string kAdmin = "admin-token-for-energy-tests";
constexpr int64_t kDay = 86'400'000;

struct Api {
  ManualClock clock;  // 2026-01-01T00:00:00Z
  SeededRandom rng{5};
  std::unique_ptr<storage::SqliteStore> store;
  std::unique_ptr<scheduler::DeviceInventory> inventory;
  std::unique_ptr<App> app;
  int quota_changes = 0;

  Api() {
    storage::StoreOptions o;
    o.path = ":memory:";
    auto s = storage::SqliteStore::open(o, clock);
    REQUIRE(s.ok());
    store = std::move(*s);
    std::vector<scheduler::MeteredDevice> devices;
    for (int i = 0; i < 2; ++i) {
      scheduler::MeteredDevice m;
      m.device = {"cpu:" + std::to_string(i), "cpu"};
      m.meter = std::make_unique<scheduler::ModelMeter>(*scheduler::find_power_profile("cpu"), clock);
      m.profile = "cpu";
      devices.push_back(std::move(m));
    }
    inventory = std::make_unique<scheduler::DeviceInventory>(std::move(devices), clock);
    EnergyOptions energy;
    energy.inventory = inventory.get();
    energy.on_quotas_changed = [this] { ++quota_changes; };
    app = std::make_unique<App>(*store, clock, rng, tenants::sha256_hex(kAdmin), tenants::ActivityHooks{}, energy);
  }

  HttpResponse call(const std::string& method, const std::string& target, const std::string& body = "",
                    const std::string& token = "") {
    HttpRequest r;
    r.method = method;
    REQUIRE(split_target(target, r.path, r.query));
    r.body = body;
    if (!token.empty()) r.headers.emplace_back("authorization", "Bearer " + token);
    return app->handle(std::move(r));
  }
  json ok(const std::string& method, const std::string& target, const std::string& body, const std::string& token) {
    auto r = call(method, target, body, token);
    INFO(method << " " << target << " → " << r.body);
    REQUIRE(r.status / 100 == 2);
    return json::parse(r.body);
  }
  std::pair<std::string, std::string> tenant(const std::string& name) {
    json j = ok("POST", "/v1/tenants", json{{"name", name}}.dump(), kAdmin);
    return {j["id"], j["token"]};
  }
  std::string submit(const std::string& token) {
    return ok("POST", "/v1/activities",
              R"({"name":"e","dataset":"synthetic","task":"class","rounds":50})", token)["id"];
  }
  // Puts the activities in one group and records its round `round` with `joules` on cpu:0,
  // split evenly, as the executor does; the metrics hear of it too.
  void train(const std::string& group_id, const std::vector<std::pair<std::string, std::string>>& members,
             int64_t round, double joules) {
    if (round == 1) {
      storage::GroupPlan plan;
      Group g;
      g.id = group_id;
      g.phase = GroupPhase::kTraining;
      g.policy = "mufl";
      g.compat_key = "k";
      g.config_json = "{}";
      for (const auto& [a, t] : members) g.members.push_back({a, t, "class", 0, {}, {}});
      plan.new_groups = {g};
      REQUIRE(store->apply_group_plan(plan, clock.now_unix_ms()).ok());
    }
    storage::GroupRoundRecord r;
    r.group_id = group_id;
    r.round = round;
    r.checkpoint = {round, "/ckpt", "sha", 1};
    storage::EnergyUnit u;
    u.group_id = group_id;
    u.round = round;
    u.device = "cpu:0";
    u.meter = "model";
    u.start_unix_ms = clock.now_unix_ms() - 2000;
    u.end_unix_ms = clock.now_unix_ms();
    u.seconds = 2;
    u.joules = joules;
    u.carbon_g_per_kwh = scheduler::kDefaultCarbonGPerKwh;
    u.grams_co2e = joules / 3.6e6 * u.carbon_g_per_kwh;
    const double f = 1.0 / static_cast<double>(members.size());
    for (const auto& [a, t] : members) {
      u.shares.push_back({a, t, f, joules * f, 2 * f, u.grams_co2e * f});
      r.reports.emplace_back(a, "{}");
    }
    r.energy = u;
    REQUIRE(store->record_group_round(r, clock.now_unix_ms()).is_ok());
    app->metrics().energy_recorded(u);
  }
  json snapshot() {
    return {{"tenants", json::parse(call("GET", "/v1/tenants", "", kAdmin).body)},
            {"devices", json::parse(call("GET", "/v1/devices", "", kAdmin).body)},
            {"drained", *store->list_drained_devices()}};
  }
};

json problem(const HttpResponse& r, int status) {
  CHECK(r.status == status);
  CHECK(r.content_type == "application/problem+json");
  json j = json::parse(r.body);
  CHECK(j["status"] == status);
  return j;
}

std::vector<std::string> error_fields(const json& p) {
  std::vector<std::string> out;
  for (const auto& e : p.value("errors", json::array())) out.push_back(e["field"]);
  return out;
}

}  // namespace

TEST_CASE("energy api: devices show state, work unit, power and energy, and tenants see only their groups") {
  Api api;
  auto [a_id, a] = api.tenant("a");
  auto [b_id, b] = api.tenant("b");
  const std::string act = api.submit(a);
  api.train("grp_a", {{act, a_id}}, 1, 10);
  api.inventory->group_claimed("cpu:0", "grp_a");
  api.inventory->unit_started("cpu:0", "grp_a", 2);
  api.clock.advance_ms(3000);

  json admin = api.ok("GET", "/v1/devices", "", kAdmin)["items"];
  REQUIRE(admin.size() == 2);
  const json& d0 = admin[0];
  CHECK(d0["name"] == "cpu:0");
  CHECK(d0["kind"] == "cpu");
  CHECK(d0["state"] == "busy");
  CHECK(d0["work_unit"] == json{{"group_id", "grp_a"}, {"round", 2}});
  CHECK(d0["meter"] == "model");
  CHECK(d0["profile"] == "cpu");
  CHECK(d0["power_watts"].get<double>() > 0);
  CHECK(d0["energy_joules"].get<double>() > 0);
  CHECK(d0["power_limit_watts"].is_null());
  CHECK(admin[1]["state"] == "idle");
  CHECK(admin[1]["work_unit"].is_null());
  CHECK(admin[1]["energy_joules"].get<double>() < d0["energy_joules"].get<double>());  // idle watts

  CHECK(api.ok("GET", "/v1/devices", "", a)["items"][0]["work_unit"]["group_id"] == "grp_a");
  json other = api.ok("GET", "/v1/devices", "", b)["items"][0];
  CHECK(other["state"] == "busy");
  CHECK(other["work_unit"].is_null());  // another tenant's group

  api.clock.advance_ms(1000);
  CHECK(api.ok("GET", "/v1/devices", "", kAdmin)["items"][0]["energy_joules"].get<double>() >
        d0["energy_joules"].get<double>());

  CHECK(error_fields(problem(api.call("GET", "/v1/devices?state=busy", "", a), 400)) ==
        std::vector<std::string>{"state"});
  problem(api.call("GET", "/v1/devices"), 401);
}

TEST_CASE("energy api: the admin drains and resumes devices, and bad requests change nothing") {
  Api api;
  auto [t_id, t] = api.tenant("t");
  json drained = api.ok("POST", "/v1/devices/cpu:1/drain", "", kAdmin);
  CHECK(drained["state"] == "drained");
  CHECK(*api.store->list_drained_devices() == std::vector<std::string>{"cpu:1"});
  CHECK(api.ok("POST", "/v1/devices/cpu:1/drain", "{}", kAdmin)["state"] == "drained");  // idempotent
  CHECK_FALSE(api.inventory->may_claim("cpu:1"));

  api.inventory->group_claimed("cpu:0", "grp_x");
  CHECK(api.ok("POST", "/v1/devices/cpu:0/drain", "", kAdmin)["state"] == "draining");
  api.inventory->group_released("cpu:0");
  CHECK(api.ok("GET", "/v1/devices", "", kAdmin)["items"][0]["state"] == "drained");

  const json before = api.snapshot();
  problem(api.call("POST", "/v1/devices/cpu:1/resume", "", t), 403);
  problem(api.call("POST", "/v1/devices/cpu:1/drain", "", t), 403);
  problem(api.call("POST", "/v1/devices/cpu:9/resume", "", kAdmin), 404);
  problem(api.call("POST", "/v1/devices/gpu/drain", "", kAdmin), 404);
  CHECK(error_fields(problem(api.call("POST", "/v1/devices/cpu:1/resume", R"({"now":true})", kAdmin), 400)) ==
        std::vector<std::string>{"now"});
  problem(api.call("POST", "/v1/devices/cpu:1/resume", "not json", kAdmin), 400);
  problem(api.call("GET", "/v1/devices/cpu:1/resume", "", kAdmin), 405);
  CHECK(api.snapshot() == before);

  CHECK(api.ok("POST", "/v1/devices/cpu:1/resume", "", kAdmin)["state"] == "idle");
  CHECK(api.ok("POST", "/v1/devices/cpu:0/resume", "", kAdmin)["state"] == "idle");
  CHECK(api.store->list_drained_devices()->empty());
  CHECK(api.inventory->may_claim("cpu:1"));
}

TEST_CASE("energy api: usage per UTC day, activity energy, and their sums agree") {
  Api api;
  auto [a_id, a] = api.tenant("a");
  auto [b_id, b] = api.tenant("b");
  const std::string x = api.submit(a), y = api.submit(b);
  api.clock.advance_ms(3600'000);
  api.train("grp_m", {{x, a_id}, {y, b_id}}, 1, 1000);  // 2026-01-01: 500 J each
  api.clock.advance_ms(kDay);
  api.train("grp_m", {{x, a_id}, {y, b_id}}, 2, 3000);  // 2026-01-02: 1500 J each

  json ax = api.ok("GET", "/v1/activities/" + x, "", a);
  CHECK(ax["energy"]["joules"].get<double>() == Approx(2000));
  CHECK(ax["energy"]["device_seconds"].get<double>() == Approx(2));
  CHECK(ax["energy"]["grams_co2e"].get<double>() == Approx(4000 / 3.6e6 * 475 / 2));
  CHECK(ax["energy"]["work_units"] == 2);
  CHECK(ax["paused"].is_null());

  json u = api.ok("GET", "/v1/usage?from=2026-01-01&to=2026-01-31", "", a);
  CHECK(u["tenant_id"] == a_id);
  CHECK(u["from"] == "2026-01-01");
  CHECK(u["to"] == "2026-01-31");
  REQUIRE(u["days"].size() == 2);
  CHECK(u["days"][0]["date"] == "2026-01-01");
  CHECK(u["days"][0]["joules"].get<double>() == Approx(500));
  CHECK(u["days"][1]["date"] == "2026-01-02");
  CHECK(u["days"][1]["joules"].get<double>() == Approx(1500));
  CHECK(u["total"]["joules"].get<double>() == Approx(ax["energy"]["joules"].get<double>()));
  CHECK(u["total"]["grams_co2e"].get<double>() == Approx(ax["energy"]["grams_co2e"].get<double>()));
  CHECK(u["total"]["work_units"] == 2);
  CHECK(u["carbon"]["source"] == "constant");
  CHECK(u["carbon"]["g_per_kwh"] == 475);
  CHECK(u["carbon"]["note"].get<std::string>().find("world average") != std::string::npos);

  // Defaults: the 30 days up to today (2026-01-02).
  json d = api.ok("GET", "/v1/usage", "", a);
  CHECK(d["to"] == "2026-01-02");
  CHECK(d["from"] == "2025-12-04");
  CHECK(d["days"].size() == 2);
  CHECK(api.ok("GET", "/v1/usage?from=2026-01-02&to=2026-01-02", "", a)["days"].size() == 1);
  CHECK(api.ok("GET", "/v1/usage?tenant=" + a_id, "", a)["tenant_id"] == a_id);  // itself: fine
  // The admin names the tenant.
  CHECK(api.ok("GET", "/v1/usage?tenant=" + b_id, "", kAdmin)["total"]["joules"].get<double>() == Approx(2000));

  // Bad queries: 400 naming the field; another tenant's id reads as unknown.
  CHECK(error_fields(problem(api.call("GET", "/v1/usage?from=yesterday", "", a), 400)) ==
        std::vector<std::string>{"from"});
  CHECK(error_fields(problem(api.call("GET", "/v1/usage?to=2026-02-30", "", a), 400)) ==
        std::vector<std::string>{"to"});
  CHECK(error_fields(problem(api.call("GET", "/v1/usage?from=2026-01-05&to=2026-01-01", "", a), 400)) ==
        std::vector<std::string>{"from"});
  CHECK(error_fields(problem(api.call("GET", "/v1/usage?from=2024-01-01&to=2026-01-01", "", a), 400)) ==
        std::vector<std::string>{"to"});
  CHECK(error_fields(problem(api.call("GET", "/v1/usage?day=1", "", a), 400)) == std::vector<std::string>{"day"});
  CHECK(error_fields(problem(api.call("GET", "/v1/usage", "", kAdmin), 400)) == std::vector<std::string>{"tenant"});
  problem(api.call("GET", "/v1/usage?tenant=" + b_id, "", a), 404);
  problem(api.call("GET", "/v1/usage?tenant=ten_nobody", "", kAdmin), 404);
  problem(api.call("GET", "/v1/usage"), 401);

  // /metrics: device series from the inventory, tenant series from the ledger.
  std::string m = api.call("GET", "/metrics").body;
  CHECK(m.find("mufl_device_power_watts{device=\"cpu:0\",meter=\"model\"}") != std::string::npos);
  CHECK(m.find("mufl_device_energy_joules_total{device=\"cpu:1\",meter=\"model\"}") != std::string::npos);
  CHECK(m.find("mufl_device_state{device=\"cpu:0\",state=\"idle\"} 1") != std::string::npos);
  CHECK(m.find("mufl_tenant_energy_joules_total{tenant=\"" + a_id + "\"} 2000") != std::string::npos);
  CHECK(m.find("mufl_tenant_co2e_grams_total{tenant=\"" + b_id + "\"}") != std::string::npos);
}

TEST_CASE("energy api: energy budgets and device shares in the quotas, the pause reason, bad types") {
  Api api;
  auto created = api.ok("POST", "/v1/tenants",
                        R"({"name":"capped","quotas":{"energy_budget_joules":1000,"max_devices":1}})", kAdmin);
  CHECK(created["quotas"]["energy_budget_joules"] == 1000);
  CHECK(created["quotas"]["max_devices"] == 1);
  CHECK(created["quotas"]["fair_share_weight"] == 1);
  CHECK(created["energy_used_joules"] == 0);
  const std::string id = created["id"], token = created["token"];
  CHECK(api.ok("GET", "/v1/tenants/" + id, "", kAdmin)["quotas"]["max_active_activities"] == 100);
  auto [free_id, free_token] = api.tenant("free");
  CHECK(api.ok("GET", "/v1/tenants/" + free_id, "", kAdmin)["quotas"]["energy_budget_joules"].is_null());
  // /metrics: a budget series only for the tenant with a budget, and its energy counter from 0.
  auto metrics = [&] { return api.call("GET", "/metrics").body; };
  const std::string budget_series = "mufl_tenant_energy_budget_joules{tenant=\"" + id + "\"} ";
  const std::string energy_series = "mufl_tenant_energy_joules_total{tenant=\"" + id + "\"} ";
  CHECK(metrics().find(budget_series + "1000\n") != std::string::npos);
  CHECK(metrics().find(energy_series + "0\n") != std::string::npos);
  CHECK(metrics().find("mufl_tenant_energy_budget_joules{tenant=\"" + free_id + "\"}") == std::string::npos);

  const std::string act = api.submit(token);
  api.train("grp_c", {{act, id}}, 1, 1200);
  CHECK(metrics().find(energy_series + "1200\n") != std::string::npos);
  json a = api.ok("GET", "/v1/activities/" + act, "", token);
  CHECK(a["paused"] == "energy budget of 1000 J used (1200 J)");
  CHECK(api.ok("GET", "/v1/tenants/" + id, "", kAdmin)["energy_used_joules"] == 1200);
  CHECK(*api.store->group_over_budget("grp_c"));

  // Bad types and ranges: 400 naming each field, and nothing changes.
  const json before = api.snapshot();
  const int changes = api.quota_changes;
  auto bad = [&](const std::string& quotas) {
    return error_fields(problem(api.call("PATCH", "/v1/tenants/" + id, R"({"quotas":)" + quotas + "}", kAdmin), 400));
  };
  CHECK(bad(R"({"energy_budget_joules":"lots"})") == std::vector<std::string>{"quotas.energy_budget_joules"});
  CHECK(bad(R"({"energy_budget_joules":-1})") == std::vector<std::string>{"quotas.energy_budget_joules"});
  CHECK(bad(R"({"energy_budget_joules":true})") == std::vector<std::string>{"quotas.energy_budget_joules"});
  CHECK(bad(R"({"max_devices":1.5})") == std::vector<std::string>{"quotas.max_devices"});
  CHECK(bad(R"({"max_devices":-2})") == std::vector<std::string>{"quotas.max_devices"});
  CHECK(bad(R"({"max_devices":"all","energy_budget_joules":[1]})") ==
        std::vector<std::string>{"quotas.energy_budget_joules", "quotas.max_devices"});
  CHECK(bad(R"({"energy_joules":5})") == std::vector<std::string>{"quotas.energy_joules"});
  for (const char* w : {"0", "-1", "1000.5", "\"2\"", "null", "true"})
    CHECK(bad(std::string(R"({"fair_share_weight":)") + w + "}") == std::vector<std::string>{"quotas.fair_share_weight"});
  problem(api.call("PATCH", "/v1/tenants/" + id, R"({"quotas":{"energy_budget_joules":5}})", token), 403);
  problem(api.call("POST", "/v1/tenants", R"({"name":"x","quotas":{"energy_budget_joules":"1"}})", kAdmin), 400);
  CHECK(api.snapshot() == before);
  CHECK(api.quota_changes == changes);

  // Raised: no longer paused, and the executor hears of it.
  json raised = api.ok("PATCH", "/v1/tenants/" + id, R"({"quotas":{"energy_budget_joules":5000}})", kAdmin);
  CHECK(raised["quotas"]["energy_budget_joules"] == 5000);
  CHECK(raised["quotas"]["max_devices"] == 1);  // fields left out stay
  CHECK(metrics().find(budget_series + "5000\n") != std::string::npos);
  CHECK(api.quota_changes == changes + 1);
  CHECK(api.ok("GET", "/v1/activities/" + act, "", token)["paused"].is_null());
  CHECK_FALSE(*api.store->group_over_budget("grp_c"));
  json weighted = api.ok("PATCH", "/v1/tenants/" + id, R"({"quotas":{"fair_share_weight":2.5}})", kAdmin);
  CHECK(weighted["quotas"]["fair_share_weight"] == 2.5);
  CHECK(weighted["quotas"]["energy_budget_joules"] == 5000);
  CHECK(api.ok("GET", "/v1/tenants/" + id, "", kAdmin)["quotas"]["fair_share_weight"] == 2.5);
  // null: unlimited.
  json unlimited = api.ok("PATCH", "/v1/tenants/" + id, R"({"quotas":{"energy_budget_joules":null,"max_devices":null}})", kAdmin);
  CHECK(unlimited["quotas"]["energy_budget_joules"].is_null());
  CHECK(unlimited["quotas"]["max_devices"].is_null());
  CHECK(unlimited["quotas"]["fair_share_weight"] == 2.5);  // left out: kept
  // Unlimited, then deleted: the budget series goes; the energy counter stays (it only rises).
  CHECK(metrics().find(budget_series) == std::string::npos);
  api.ok("PATCH", "/v1/tenants/" + id, R"({"quotas":{"energy_budget_joules":7000}})", kAdmin);
  CHECK(metrics().find(budget_series + "7000\n") != std::string::npos);
  REQUIRE(api.call("DELETE", "/v1/tenants/" + id, "", kAdmin).status == 204);
  CHECK(metrics().find(budget_series) == std::string::npos);
  CHECK(metrics().find(energy_series + "1200\n") != std::string::npos);
}
