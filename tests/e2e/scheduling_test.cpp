// Placement policies end to end against the real mufld on two CPU slots: under `carbon`, with a
// carbon file whose current UTC hour (and the next) is dirty, an activity with a far deadline
// is held (its group and the activity say why, no round runs) while one whose deadline leaves
// no slack runs; /v1/devices and /metrics name the policy and count its decisions; a bad
// --policy stops mufld with exit code 2. (Two groups at once under fifo: training_test.)
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/time_format.h"
#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/metrics_text.h"
#include "tests/support/mufld_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "sched-admin";

// An EIA-format day, periodic over its 24 rows: the UTC hour of `now` and the next at 900
// g/kWh, every other hour at 100. A unit with slack is held at least until the hour after next.
std::string write_carbon_day(const TempDir& dir, std::time_t now) {
  const int dirty = static_cast<int>((now / 3600) % 24);
  const std::string path = dir.file("carbon.csv");
  std::ofstream out(path);
  out << "timestamp,avg_CI\n";
  for (int h = 0; h < 24; ++h) {
    const bool is_dirty = h == dirty || h == (dirty + 1) % 24;
    out << "2026-01-01 " << (h < 10 ? "0" : "") << h << ":00:00+00:00," << (is_dirty ? 900 : 100) << "\n";
  }
  return path;
}

std::string spec(const std::string& name, int rounds, int64_t deadline_ms) {
  return R"({"name":")" + name + R"(","dataset":"synthetic","task":"class","rounds":)" + std::to_string(rounds) +
         R"(,"clients":8,"clients_per_round":2,"seed":3,"merge":false,"deadline":")" +
         mufl::format_rfc3339(deadline_ms) + R"("})";
}

}  // namespace

TEST_CASE("e2e scheduling: carbon holds an activity with slack in a dirty hour and runs one without") {
  TempDir dir;
  const std::time_t now = std::time(nullptr);
  const std::string carbon = write_carbon_day(dir, now);
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "cpu:2", "--torch-threads", "1", "--energy-meter", "model", "--policy", "carbon",
                      "--carbon-file", carbon, "--round-seconds-prior", "60"});
  HttpClient c("127.0.0.1", mufld.port());
  auto t = c.post("/v1/tenants", R"({"name":"sched"})", kAdmin);
  REQUIRE(t.status == 201);
  const std::string token = json::parse(t.body)["token"];

  // The policy in force, with its options.
  json devices = get(c, "/v1/devices", token);
  CHECK(devices["items"].size() == 2);
  CHECK(devices["policy"]["name"] == "carbon");
  CHECK(devices["policy"]["carbon_horizon_hours"] == 24);
  CHECK(devices["policy"]["carbon_source"] == carbon);

  const int64_t now_ms = static_cast<int64_t>(now) * 1000;
  // Far deadline (30 days): slack, so held. Near deadline (90 s for 3 rounds at the 60 s prior):
  // no slack, so it runs in the dirty hour.
  const std::string far = json::parse(c.post("/v1/activities", spec("far", 3, now_ms + 30LL * 86400'000), token).body)["id"];
  const std::string near = json::parse(c.post("/v1/activities", spec("near", 3, now_ms + 90'000), token).body)["id"];

  json held = wait_for(c, "/v1/activities/" + far, token, [](const json& a) { return a["waiting"].is_string(); });
  INFO(held.dump());
  CHECK(held["waiting"].get<std::string>().rfind("carbon: 900 g/kWh now", 0) == 0);
  CHECK(held["waiting_reason"] == "carbon");
  REQUIRE(held["groups"].size() == 1);
  json group = get(c, "/v1/groups/" + held["groups"][0].get<std::string>(), token);
  CHECK(group["waiting"] == held["waiting"]);
  CHECK(group["waiting_reason"] == "carbon");
  CHECK(group["device"].is_null());

  // The urgent one trains to the end while the held one, with a device free all along, runs no round.
  json done = wait_for(c, "/v1/activities/" + near, token, [](const json& a) { return a["state"] == "succeeded"; });
  CHECK(done["progress"]["round"] == 3);
  CHECK(done["waiting"].is_null());
  CHECK(done["waiting_reason"].is_null());
  json still = get(c, "/v1/activities/" + far, token);
  CHECK(still["progress"]["round"] == 0);
  CHECK(still["progress"]["device"].is_null());
  CHECK(still["waiting"].is_string());

  auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  CHECK(metric(m.body, R"(mufl_scheduler_policy_info{policy="carbon"})") == 1);
  CHECK(metric(m.body, R"(mufl_scheduler_decisions_total{decision="run",policy="carbon"})") >= 1);
  CHECK(metric(m.body, R"(mufl_scheduler_decisions_total{decision="hold",policy="carbon"})") >= 1);
  CHECK(metric(m.body, "mufl_scheduler_held_groups") == 1);
  // The held group is the only one waiting, for the carbon reason (every reason is exported).
  for (const char* r : {"budget", "max_devices", "storage", "carbon", "better_device", "no_fit", "no_free_device",
                        "pending"})
    CHECK(metric(m.body, std::string("mufl_scheduler_waiting_groups{reason=\"") + r + "\"}") ==
          (std::string(r) == "carbon" ? 1 : 0));

  CHECK(c.del("/v1/activities/" + far, token).status == 200);
  CHECK(mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e scheduling: groups say why they wait (max_devices, no free device, budget) in the API and /metrics") {
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin, {"--devices", "cpu:1", "--torch-threads", "1"});
  HttpClient c("127.0.0.1", mufld.port());
  auto tenant = [&](const std::string& name, const std::string& quotas) {
    auto t = c.post("/v1/tenants", R"({"name":")" + name + R"(","quotas":)" + quotas + "}", kAdmin);
    REQUIRE(t.status == 201);
    return json::parse(t.body)["token"].get<std::string>();
  };
  const std::string busy = tenant("busy", "{}"), capped = tenant("capped", R"({"max_devices":0})"),
                    broke = tenant("broke", R"({"energy_budget_joules":0})");
  auto submit = [&](const std::string& name, int rounds, const std::string& token) {
    auto r = c.post("/v1/activities", spec(name, rounds, std::time(nullptr) * 1000LL + 30LL * 86400'000), token);
    REQUIRE(r.status == 201);
    return json::parse(r.body)["id"].get<std::string>();
  };
  // The one device trains a long activity; then three more wait, each for its own reason.
  const std::string runs = submit("runs", 500, busy);
  wait_for(c, "/v1/activities/" + runs, busy, [](const json& a) { return a["progress"]["device"].is_string(); });
  const std::string queued = submit("queued", 2, busy), over_quota = submit("over-quota", 2, capped),
                    over_budget = submit("over-budget", 2, broke);
  auto reason_of = [&](const std::string& id, const std::string& token) {
    return wait_for(c, "/v1/activities/" + id, token, [](const json& a) { return a["waiting_reason"].is_string(); });
  };
  json q = reason_of(queued, busy), mq = reason_of(over_quota, capped), b = reason_of(over_budget, broke);
  CHECK(q["waiting_reason"] == "no_free_device");
  CHECK(q["waiting"] == "all 1 devices are busy, draining or drained (1 training)");
  CHECK(mq["waiting_reason"] == "max_devices");
  CHECK(b["waiting_reason"] == "budget");
  CHECK(b["paused"].is_string());
  // The group list says the same, and the training group has no reason.
  json groups = get(c, "/v1/groups", kAdmin);
  std::map<std::string, std::string> by_group;
  for (const auto& g : groups["items"])
    by_group[g["id"]] = g["waiting_reason"].is_null() ? "null" : g["waiting_reason"].get<std::string>();
  CHECK(by_group[get(c, "/v1/activities/" + runs, busy)["groups"][0]] == "null");
  CHECK(by_group[q["groups"][0]] == "no_free_device");
  CHECK(by_group[mq["groups"][0]] == "max_devices");
  CHECK(by_group[b["groups"][0]] == "budget");

  auto m = c.get("/metrics");
  REQUIRE(m.status == 200);
  CHECK(metric(m.body, R"(mufl_scheduler_waiting_groups{reason="no_free_device"})") == 1);
  CHECK(metric(m.body, R"(mufl_scheduler_waiting_groups{reason="max_devices"})") == 1);
  CHECK(metric(m.body, R"(mufl_scheduler_waiting_groups{reason="budget"})") == 1);
  CHECK(metric(m.body, R"(mufl_scheduler_waiting_groups{reason="carbon"})") == 0);
  CHECK(metric(m.body, "mufl_scheduler_held_groups") == 0);

  // The long one cancelled, the queued one takes the device and ends with no reason.
  CHECK(c.del("/v1/activities/" + runs, busy).status == 200);
  json after = wait_for(c, "/v1/activities/" + queued, busy, [](const json& a) { return a["state"] == "succeeded"; });
  CHECK(after["waiting_reason"].is_null());
  for (const auto& [id, token] : {std::pair{over_quota, capped}, std::pair{over_budget, broke}})
    CHECK(c.del("/v1/activities/" + id, token).status == 200);
  CHECK(mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e scheduling: an unknown policy stops mufld with exit code 2 and a message") {
  std::string out;
  const int rc = run_command(std::string(MUFLD_PATH) + " --policy greedy --devices none", out);
  CHECK(rc == 2);
  CHECK(out.find("--policy must be fifo, fair, energy or carbon") != std::string::npos);
  CHECK(run_command(std::string(MUFLD_PATH) + " --energy-eta 3 --devices none", out) == 2);
}
