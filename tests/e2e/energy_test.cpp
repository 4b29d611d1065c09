// Energy end to end against the real mufld on two CPU slots metered by the power model: devices
// show power and energy that grow, every round lands in the energy ledger and is attributed to
// its activity and tenant (the activity's joules equal its ledger shares, /v1/usage and
// /metrics agree), a device drains and resumes (also across a restart), and an energy budget
// pauses an activity until the admin raises it. Rounds abandoned by a shutdown or a cancel are
// in the ledger too, flagged, and charged to their tenant.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/metrics_text.h"
#include "tests/support/mufld_process.h"
#include "tests/support/sse_client.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "energy-admin";
const std::vector<std::string> kArgs = {"--devices", "cpu:2", "--torch-threads", "1", "--energy-meter", "model"};

std::pair<std::string, std::string> make_tenant(HttpClient& c, const std::string& name, const std::string& quotas = "{}") {
  auto t = c.post("/v1/tenants", R"({"name":")" + name + R"(","quotas":)" + quotas + "}", kAdmin);
  REQUIRE(t.status == 201);
  json j = json::parse(t.body);
  return {j["id"], j["token"]};
}

json device(const json& list, const std::string& name) {
  for (const auto& d : list["items"])
    if (d["name"] == name) return d;
  FAIL("no device " << name << " in " << list.dump());
  return {};
}

// Runs `sql` on the database at `db_path`, read-only beside the running mufld, with `text`
// bound to ?1 when given, and calls `row` for each result row.
void read_db(const std::string& db_path, const char* sql, const std::function<void(sqlite3_stmt*)>& row,
             const std::optional<std::string>& text = std::nullopt) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK);
  if (text) sqlite3_bind_text(st, 1, text->c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) row(st);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// The sum of an activity's shares in the ledger, read from the database itself.
double ledger_joules(const std::string& db_path, const std::string& activity_id) {
  std::optional<double> joules;
  read_db(db_path, "SELECT coalesce(sum(joules), 0) FROM energy_attribution WHERE activity_id = ?",
          [&](sqlite3_stmt* st) { joules = sqlite3_column_double(st, 0); }, activity_id);
  REQUIRE(joules);
  return *joules;
}

// The ledger rows of a group's units: (round, abandoned reason or "", joules), in order.
std::vector<std::tuple<int64_t, std::string, double>> ledger_units(const std::string& db_path) {
  std::vector<std::tuple<int64_t, std::string, double>> out;
  read_db(db_path, "SELECT round, coalesce(abandoned, ''), joules FROM energy_ledger ORDER BY id", [&](sqlite3_stmt* st) {
    out.emplace_back(sqlite3_column_int64(st, 0), reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                     sqlite3_column_double(st, 2));
  });
  return out;
}

const std::string kSpec =
    R"({"name":"e","dataset":"synthetic","task":"class","rounds":4,"clients":8,"clients_per_round":2,"seed":3,"merge":false})";

bool ended(const json& a) { return a["state"] == "succeeded" || a["state"] == "failed" || a["state"] == "cancelled"; }

}  // namespace

TEST_CASE("e2e energy: devices, the ledger, the activity's joules, usage and metrics agree") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kArgs);
  HttpClient c("127.0.0.1", mufld.port());
  auto [tenant_id, token] = make_tenant(c, "meter");

  json before = get(c, "/v1/devices", token);
  REQUIRE(before["items"].size() == 2);
  for (const auto& d : before["items"]) {
    CHECK(d["meter"] == "model");
    CHECK(d["profile"] == "cpu");
    CHECK(d["kind"] == "cpu");
    CHECK(d["state"] == "idle");
    CHECK(d["power_watts"].get<double>() > 0);  // idle watts
  }

  const std::string id = json::parse(c.post("/v1/activities", kSpec, token).body)["id"];
  json a = wait_for(c, "/v1/activities/" + id, token, ended);
  REQUIRE(a["state"] == "succeeded");

  // The devices' energy grew; the activity's joules are its ledger shares.
  json after = get(c, "/v1/devices", token);
  for (const auto& name : {"cpu:0", "cpu:1"})
    CHECK(device(after, name)["energy_joules"].get<double>() > device(before, name)["energy_joules"].get<double>());
  const double joules = a["energy"]["joules"];
  CHECK(joules > 0);
  CHECK(a["energy"]["work_units"] == 4);
  CHECK(a["energy"]["device_seconds"].get<double>() > 0);
  CHECK(a["energy"]["grams_co2e"].get<double>() == Approx(joules / 3.6e6 * 475));
  CHECK(ledger_joules(dir.file("mufl.db"), id) == Approx(joules));
  const double seconds = a["energy"]["device_seconds"];
  // The model meter charges busy watts (65 W for the cpu profile) over the unit's time.
  CHECK(joules / seconds == Approx(65).epsilon(0.05));
  WARN("model meter: " << joules / 4 << " J per round, " << seconds / 4 << " s per round");

  json usage = get(c, "/v1/usage", token);
  CHECK(usage["tenant_id"] == tenant_id);
  CHECK(usage["total"]["joules"].get<double>() == Approx(joules));
  CHECK(usage["total"]["work_units"] == 4);
  double days = 0;
  for (const auto& d : usage["days"]) days += d["joules"].get<double>();
  CHECK(days == Approx(joules));
  CHECK(usage["carbon"]["source"] == "constant");
  CHECK(get(c, "/v1/usage?tenant=" + tenant_id, kAdmin)["total"]["joules"].get<double>() == Approx(joules));

  const std::string m = c.get("/metrics").body;
  CHECK(metric(m, "mufl_tenant_energy_joules_total{tenant=\"" + tenant_id + "\"}") == Approx(joules));
  CHECK(metric(m, "mufl_tenant_co2e_grams_total{tenant=\"" + tenant_id + "\"}") > 0);
  CHECK(metric(m, "mufl_device_power_watts{device=\"cpu:0\",meter=\"model\"}") > 0);
  CHECK(metric(m, "mufl_device_energy_joules_total{device=\"cpu:1\",meter=\"model\"}") > 0);
  CHECK(metric(m, "mufl_device_state{device=\"cpu:0\",state=\"idle\"}") == 1);

  // The energy so far is in the tenant counters again after a restart.
  CHECK(mufld.stop(SIGTERM) == 0);
  MufldProcess again(MUFLD_PATH, dir.path(), kAdmin, kArgs);
  HttpClient c2("127.0.0.1", again.port());
  CHECK(metric(c2.get("/metrics").body, "mufl_tenant_energy_joules_total{tenant=\"" + tenant_id + "\"}") ==
        Approx(joules));
}

TEST_CASE("e2e energy: draining a busy device moves its group to the other, and drains survive a restart") {
  TempDir dir;
  std::string token;
  {
    MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kArgs);
    HttpClient c("127.0.0.1", mufld.port());
    token = make_tenant(c, "drainer").second;
    const std::string id = json::parse(c.post("/v1/activities",
        R"({"name":"long","dataset":"synthetic","task":"parity","rounds":10000,"clients":4,"clients_per_round":1,"merge":false})",
        token).body)["id"];
    json a = wait_for(c, "/v1/activities/" + id, token, [](const json& j) { return j["progress"]["round"].get<int>() >= 1; });
    const std::string first = a["progress"]["device"], other = first == "cpu:0" ? "cpu:1" : "cpu:0";
    const std::string group = a["groups"][0];
    CHECK(device(get(c, "/v1/devices", token), first)["work_unit"]["group_id"] == group);

    CHECK(c.post("/v1/devices/" + first + "/drain", "", token).status == 403);
    auto drained = c.post("/v1/devices/" + first + "/drain", "", kAdmin);
    REQUIRE(drained.status == 200);
    CHECK((json::parse(drained.body)["state"] == "draining" || json::parse(drained.body)["state"] == "drained"));
    // The round in progress finishes, the group moves to the other device and trains on there.
    json devices = wait_for(c, "/v1/devices", kAdmin, [&](const json& d) {
      return device(d, first)["state"] == "drained" && device(d, other)["state"] == "busy";
    });
    CHECK(device(devices, other)["work_unit"]["group_id"] == group);
    const int round = get(c, "/v1/activities/" + id, token)["progress"]["round"];
    wait_for(c, "/v1/activities/" + id, token,
             [&](const json& j) { return j["progress"]["round"].get<int>() > round && j["progress"]["device"] == other; });
    CHECK(device(get(c, "/v1/devices", kAdmin), first)["state"] == "drained");

    CHECK(json::parse(c.post("/v1/devices/" + first + "/resume", "", kAdmin).body)["state"] == "idle");
    CHECK(c.post("/v1/devices/cpu:7/drain", "", kAdmin).status == 404);
    CHECK(json::parse(c.post("/v1/devices/cpu:1/drain", "", kAdmin).body)["state"] != "idle");
    CHECK(c.del("/v1/activities/" + id, token).status == 200);
    wait_for(c, "/v1/devices", kAdmin, [](const json& d) { return device(d, "cpu:1")["state"] == "drained"; });
    CHECK(mufld.stop(SIGTERM) == 0);
  }
  MufldProcess again(MUFLD_PATH, dir.path(), kAdmin, kArgs);
  HttpClient c("127.0.0.1", again.port());
  json d = get(c, "/v1/devices", kAdmin);
  CHECK(device(d, "cpu:1")["state"] == "drained");
  CHECK(device(d, "cpu:0")["state"] == "idle");
}

TEST_CASE("e2e energy: an energy budget pauses an activity, and raising it resumes it") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kArgs);
  HttpClient c("127.0.0.1", mufld.port());
  auto [tenant_id, token] = make_tenant(c, "frugal", R"({"energy_budget_joules":1})");
  SseClient budget(mufld.port(), "/v1/events?types=budget.changed", token);
  REQUIRE(budget.status() == 200);
  const std::string id = json::parse(c.post("/v1/activities", kSpec, token).body)["id"];

  // After its first round (far over 1 J) the group lets its device go, and the activity says why.
  json paused = wait_for(c, "/v1/activities/" + id, token,
                         [](const json& a) { return a["paused"].is_string() && a["progress"]["device"].is_null(); });
  CHECK(std::regex_match(paused["paused"].get<std::string>(), std::regex(R"(energy budget of 1 J used \(\d+ J\))")));
  CHECK(paused["state"] != "succeeded");
  CHECK(paused["waiting_reason"] == "budget");
  const int round = paused["progress"]["round"];
  CHECK(round >= 1);
  CHECK(round < 4);
  // The device lets the group go, and no device claims it again.
  wait_for(c, "/v1/devices", kAdmin, [](const json& d) {
    return d["items"][0]["state"] == "idle" && d["items"][1]["state"] == "idle";
  });
  CHECK(get(c, "/v1/activities/" + id, token)["progress"]["round"] == round);
  json tenant = get(c, "/v1/tenants/" + tenant_id, kAdmin);
  CHECK(tenant["energy_used_joules"].get<double>() > 1);
  CHECK(c.request("PATCH", "/v1/tenants/" + tenant_id, R"({"quotas":{"energy_budget_joules":"more"}})",
                  {{"Authorization", "Bearer " + kAdmin}}).status == 400);

  // The tenant's stream said so when the first round used the budget up.
  auto exhausted = budget.next(std::chrono::seconds(30));
  REQUIRE(exhausted.has_value());
  const json e = json::parse(exhausted->data);
  CHECK(e["tenant_id"] == tenant_id);
  CHECK(e["state"] == "exhausted");
  CHECK(e["energy_budget_joules"] == 1.0);
  CHECK(e["energy_used_joules"].get<double>() > 1);

  auto raised = c.request("PATCH", "/v1/tenants/" + tenant_id, R"({"quotas":{"energy_budget_joules":1e9}})",
                          {{"Authorization", "Bearer " + kAdmin}});
  REQUIRE(raised.status == 200);
  auto available = budget.next(std::chrono::seconds(30));
  REQUIRE(available.has_value());
  CHECK(json::parse(available->data)["state"] == "available");
  json done = wait_for(c, "/v1/activities/" + id, token, ended);
  CHECK(done["state"] == "succeeded");
  CHECK(done["paused"].is_null());
  CHECK(done["waiting_reason"].is_null());
  CHECK(done["energy"]["work_units"] == 4);
  CHECK(mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e energy: rounds abandoned by a shutdown and by a cancel are in the ledger, flagged, and charged") {
  TempDir dir;
  const std::string db = dir.file("mufl.db");
  // Rounds of a few seconds (4 clients x 6 local epochs), so that a signal sent while one runs
  // lands in it. Should one end in the few milliseconds between seeing it run and the signal,
  // nothing is abandoned and the step is tried again (at most three times).
  const std::string spec =
      R"({"name":"slow","dataset":"synthetic","task":"class","rounds":10000,"clients":4,"clients_per_round":4,)"
      R"("local_epochs":6,"merge":false})";
  // Waits until a round of the activity, after its first, runs on a device; returns that round.
  auto in_round = [&](HttpClient& c, const std::string& id, const std::string& token) {
    int64_t round = 0;
    wait_for(c, "/v1/devices", kAdmin, [&](const json& d) {
      const json a = get(c, "/v1/activities/" + id, token);
      const int64_t done = a["progress"]["round"];
      for (const auto& dev : d["items"])
        if (done >= 1 && dev["state"] == "busy" && dev["work_unit"].is_object() &&
            dev["work_unit"]["round"].is_number() && dev["work_unit"]["round"].get<int64_t>() == done + 1) {
          round = done + 1;
          return true;
        }
      return false;
    });
    return round;
  };
  auto count = [&](const std::string& why) {
    int n = 0;
    if (!std::ifstream(db)) return n;  // before the first start
    for (const auto& u : ledger_units(db)) n += std::get<1>(u) == why ? 1 : 0;
    return n;
  };
  std::string id, token, tenant_id;
  int64_t stopped_round = 0;
  for (int attempt = 0; attempt < 3 && count("shutdown") == 0; ++attempt) {
    MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, kArgs);
    HttpClient c("127.0.0.1", mufld.port());
    if (attempt == 0) {
      std::tie(tenant_id, token) = make_tenant(c, "interrupted");
      id = json::parse(c.post("/v1/activities", spec, token).body)["id"];
    }
    stopped_round = in_round(c, id, token);
    CHECK(mufld.stop(SIGTERM) == 0);
  }
  // The stopped round is in the ledger, abandoned by the shutdown, after the recorded ones.
  auto units = ledger_units(db);
  REQUIRE(count("shutdown") == 1);
  CHECK(std::get<0>(units.back()) == stopped_round);
  CHECK(std::get<1>(units.back()) == "shutdown");
  CHECK(std::get<2>(units.back()) > 0);

  MufldProcess again(MUFLD_PATH, dir.path(), kAdmin, kArgs);
  HttpClient c("127.0.0.1", again.port());
  // The round runs again and is recorded beside its abandoned try.
  wait_for(c, "/v1/activities/" + id, token,
           [&](const json& a) { return a["progress"]["round"].get<int64_t>() >= stopped_round; });
  int recorded_again = 0;
  for (const auto& [round, why, joules] : ledger_units(db)) recorded_again += round == stopped_round && why.empty();
  CHECK(recorded_again == 1);
  // A cancel mid-round: its activity (a fresh one if the first cancel landed between rounds).
  std::vector<std::string> ids = {id};
  for (int attempt = 0; attempt < 3 && count("cancelled") == 0; ++attempt) {
    if (attempt > 0) ids.push_back(json::parse(c.post("/v1/activities", spec, token).body)["id"]);
    in_round(c, ids.back(), token);
    REQUIRE(c.del("/v1/activities/" + ids.back(), token).status == 200);
    wait_for(c, "/v1/devices", kAdmin, [](const json& d) {
      return d["items"][0]["state"] == "idle" && d["items"][1]["state"] == "idle";
    });
  }
  CHECK(count("cancelled") == 1);

  // Every joule, abandoned ones too, is its activity's and its tenant's.
  double total = 0;
  for (const auto& u : ledger_units(db)) total += std::get<2>(u);
  double activities = 0;
  int abandoned = 0;
  for (const auto& a_id : ids) {
    json a = get(c, "/v1/activities/" + a_id, token);
    CHECK(a["state"] == "cancelled");
    CHECK(a["energy"]["joules"].get<double>() == Approx(ledger_joules(db, a_id)));
    activities += a["energy"]["joules"].get<double>();
    abandoned += a["energy"]["abandoned_units"].get<int>();
  }
  CHECK(abandoned == 2);
  CHECK(activities == Approx(total));
  CHECK(get(c, "/v1/tenants/" + tenant_id, kAdmin)["energy_used_joules"].get<double>() == Approx(total));
  CHECK(get(c, "/v1/usage", token)["total"]["abandoned_units"] == 2);
  CHECK(metric(c.get("/metrics").body, "mufl_tenant_energy_joules_total{tenant=\"" + tenant_id + "\"}") ==
        Approx(total));
}
