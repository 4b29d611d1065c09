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
  REQUIRE(held["groups"].size() == 1);
  json group = get(c, "/v1/groups/" + held["groups"][0].get<std::string>(), token);
  CHECK(group["waiting"] == held["waiting"]);
  CHECK(group["device"].is_null());

  // The urgent one trains to the end while the held one, with a device free all along, runs no round.
  json done = wait_for(c, "/v1/activities/" + near, token, [](const json& a) { return a["state"] == "succeeded"; });
  CHECK(done["progress"]["round"] == 3);
  CHECK(done["waiting"].is_null());
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

  CHECK(c.del("/v1/activities/" + far, token).status == 200);
  CHECK(mufld.stop(SIGTERM) == 0);
}

TEST_CASE("e2e scheduling: an unknown policy stops mufld with exit code 2 and a message") {
  std::string out;
  const int rc = run_command(std::string(MUFLD_PATH) + " --policy greedy --devices none", out);
  CHECK(rc == 2);
  CHECK(out.find("--policy must be fifo, fair, energy or carbon") != std::string::npos);
  CHECK(run_command(std::string(MUFLD_PATH) + " --energy-eta 3 --devices none", out) == 2);
}
