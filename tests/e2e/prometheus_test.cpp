// A real Prometheus server scraping the real mufld: the target is up, and after a small
// activity trains, Prometheus holds the rounds, energy and request figures the API and
// /metrics report, its recording rules (deploy/prometheus/mufl-rules.yml) evaluate, and the
// energy-budget alert becomes active once the admin lowers the tenant's budget below its use.
//
// Needs the Debian package prometheus. Where the binary is missing, CMake registers a test
// that says so and reports itself skipped (exit 77) instead of this one; should the binary
// vanish after configuring, this test does the same.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/http_client.h"
#include "tests/support/json_poll.h"
#include "tests/support/metrics_text.h"
#include "tests/support/mufld_process.h"
#include "tests/support/prometheus_process.h"
#include "tests/support/temp_dir.h"

using namespace mufl::testing;
using nlohmann::json;

namespace {

const std::string kAdmin = "prometheus-e2e-admin";
const std::string kJob = "mufl-e2e";
// A series that is missing reads as NaN, so every comparison with it fails.
const double kMissing = std::nan("");

constexpr double kBudget = 1e9;  // joules: far more than 4 rounds use

// A scrape every second of one mufld, with mufl's rules evaluated every second too.
void write_config(const std::string& path, uint16_t mufld_port) {
  std::ofstream out(path);
  out << "global:\n"
         "  scrape_interval: 1s\n"
         "  scrape_timeout: 1s\n"
         "  evaluation_interval: 1s\n"
         "rule_files:\n"
         "  - " MUFL_SOURCE_DIR "/deploy/prometheus/mufl-rules.yml\n"
         "scrape_configs:\n"
         "  - job_name: " << kJob << "\n"
         "    static_configs:\n"
         "      - targets: ['127.0.0.1:" << mufld_port << "']\n";
  REQUIRE(out);
}

}  // namespace

TEST_CASE("e2e prometheus: a real Prometheus scrapes mufld, holds its rounds, energy and requests, runs the rules") {
  if (access(PROMETHEUS_PATH, X_OK) != 0) {
    std::cout << "SKIP: " PROMETHEUS_PATH " not found (install the Debian package prometheus)" << std::endl;
    std::exit(77);
  }
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "cpu:1", "--torch-threads", "1", "--energy-meter", "model", "--db-sync", "normal"});
  HttpClient c("127.0.0.1", mufld.port());
  write_config(dir.file("prometheus.yml"), mufld.port());
  PrometheusProcess prom(PROMETHEUS_PATH, dir.file("prometheus.yml"), dir.path());
  INFO("prometheus log at start:\n" << prom.log_tail());

  const std::string sel = "job=\"" + kJob + "\"";
  auto value_is = [](double want) {
    return [want](const json& r) { return std::abs(single_value(r) - want) <= 1e-9 * std::max(1.0, std::abs(want)); };
  };
  bool ok = false;
  json r = prom.wait_for("up{" + sel + "}", value_is(1), ok);
  INFO("up: " << r.dump());
  REQUIRE(ok);

  auto t = c.post("/v1/tenants", json{{"name", "watched"}, {"quotas", {{"energy_budget_joules", kBudget}}}}.dump(),
                  kAdmin);
  REQUIRE(t.status == 201);
  const std::string tenant = json::parse(t.body)["id"], token = json::parse(t.body)["token"];
  const std::string tsel = sel + ",tenant=\"" + tenant + "\"";

  auto posted = c.post("/v1/activities",
                       R"({"name":"p","dataset":"synthetic","task":"class","rounds":4,"clients":8,)"
                       R"("clients_per_round":2,"seed":7,"merge":false})",
                       token);
  REQUIRE(posted.status == 201);
  const std::string id = json::parse(posted.body)["id"];
  json a = wait_for(c, "/v1/activities/" + id, token, [](const json& j) {
    return j["state"] == "succeeded" || j["state"] == "failed" || j["state"] == "cancelled";
  });
  REQUIRE(a["state"] == "succeeded");
  const int rounds = a["progress"]["round"];
  CHECK(rounds == 4);
  CHECK(get(c, "/v1/activities/" + id + "/rounds", token)["items"].size() == 4);
  const double joules = a["energy"]["joules"];
  REQUIRE(joules > 0);

  // Training has ended: what /metrics says now is what Prometheus must come to hold.
  const std::string m0 = c.get("/metrics").body;
  CHECK(metric(m0, "mufl_tenant_energy_joules_total{tenant=\"" + tenant + "\"}", kMissing) == Approx(joules));
  const std::string device_series = "mufl_device_energy_joules_total{device=\"cpu:0\",meter=\"model\"}";
  const double device_joules_before = metric(m0, device_series, kMissing);
  REQUIRE(device_joules_before > 0);

  // Rounds: one merged-or-not group round per activity round here (merge false).
  r = prom.wait_for("sum(mufl_fl_rounds_total{" + sel + "})", value_is(rounds), ok);
  INFO("rounds: " << r.dump());
  CHECK(ok);
  r = prom.wait_for("mufl_fl_round_duration_seconds_count{" + sel + ",device=\"cpu:0\"}", value_is(rounds), ok);
  CHECK(ok);

  // Energy: the tenant's counter equals the activity's joules in the API; the device counter
  // (idle time too, so it keeps growing) lies between two reads of /metrics around the scrape.
  r = prom.wait_for("mufl_tenant_energy_joules_total{" + tsel + "}", value_is(joules), ok);
  INFO("tenant energy: " << r.dump());
  CHECK(ok);
  r = prom.wait_for("mufl_device_energy_joules_total{" + sel + ",device=\"cpu:0\",meter=\"model\"}",
                    [&](const json& res) { return single_value(res) >= device_joules_before; }, ok);
  CHECK(ok);
  const double device_joules_prom = single_value(r);
  const double device_joules_after = metric(c.get("/metrics").body, device_series, kMissing);
  CHECK(device_joules_prom >= device_joules_before);
  CHECK(device_joules_prom <= device_joules_after);
  r = prom.wait_for("mufl_tenant_energy_budget_joules{" + tsel + "}", value_is(kBudget), ok);
  CHECK(ok);

  // Requests: exact for the calls made once, bounded by a later /metrics for the polled route.
  auto requests = [&](const std::string& route, const std::string& method, const std::string& code) {
    return "mufl_http_requests_total{" + sel + ",route=\"" + route + "\",method=\"" + method + "\",code=\"" + code +
           "\"}";
  };
  r = prom.wait_for(requests("/v1/tenants", "POST", "201"), value_is(1), ok);
  CHECK(ok);
  r = prom.wait_for(requests("/v1/activities", "POST", "201"), value_is(1), ok);
  CHECK(ok);
  r = prom.wait_for(requests("/v1/activities/{id}/rounds", "GET", "200"), value_is(1), ok);
  CHECK(ok);
  r = prom.wait_for(requests("/v1/activities/{id}", "GET", "200"), [](const json& res) { return single_value(res) >= 1; },
                    ok);
  CHECK(ok);
  const double polls_prom = single_value(r);
  CHECK(polls_prom <= metric(c.get("/metrics").body,
                             R"(mufl_http_requests_total{code="200",method="GET",route="/v1/activities/{id}"})", kMissing));
  // Prometheus's own scrapes are requests too.
  r = prom.wait_for(requests("/metrics", "GET", "200"), [](const json& res) { return single_value(res) >= 2; }, ok);
  CHECK(ok);

  // Recording rules from deploy/prometheus/mufl-rules.yml.
  auto positive = [](const json& res) { return single_value(res) > 0; };
  r = prom.wait_for("device:mufl_fl_rounds:rate5m{device=\"cpu:0\"}", positive, ok);
  INFO("rounds rate: " << r.dump());
  CHECK(ok);
  // (A series that appears at its first increment and stays has no rate; Prometheus's scrapes
  // of /metrics keep theirs rising.)
  r = prom.wait_for("route_code:mufl_http_requests:rate5m{route=\"/metrics\",code=\"200\"}", positive, ok);
  CHECK(ok);
  r = prom.wait_for("tenant:mufl_tenant_energy_budget_used:ratio{tenant=\"" + tenant + "\"}", value_is(joules / kBudget),
                    ok);
  INFO("budget ratio: " << r.dump());
  CHECK(ok);

  // The budget alert: not active within budget; active (pending for its 1 min `for`) once the
  // budget is lowered below what the tenant has used.
  const std::string alert = "ALERTS{alertname=\"MuflTenantOverEnergyBudget\",tenant=\"" + tenant + "\"}";
  CHECK(prom.query(alert).empty());
  auto lowered = c.request("PATCH", "/v1/tenants/" + tenant, R"({"quotas":{"energy_budget_joules":1}})",
                           {{"Authorization", "Bearer " + kAdmin}});
  REQUIRE(lowered.status == 200);
  r = prom.wait_for("mufl_tenant_energy_budget_joules{" + tsel + "}", value_is(1), ok);
  CHECK(ok);
  r = prom.wait_for(alert, [](const json& res) { return res.size() == 1; }, ok);
  INFO("alert: " << r.dump());
  REQUIRE(ok);
  CHECK(r[0]["metric"]["severity"] == "warning");
  CHECK((r[0]["metric"]["alertstate"] == "pending" || r[0]["metric"]["alertstate"] == "firing"));
}
