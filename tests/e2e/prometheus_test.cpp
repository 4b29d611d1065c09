// A real Prometheus server scraping the real mufld: the target is up, and after a small
// activity trains, Prometheus holds the rounds, energy and request figures the API and
// /metrics report, its recording rules (deploy/prometheus/mufl-rules.yml) evaluate, and the
// energy-budget alert becomes active once the admin lowers the tenant's budget below its use.
// A second test serves mufl's console (deploy/prometheus/consoles/mufl.html) from Prometheus
// over a merge-and-split workload and evaluates every expression in it, and loads it in
// headless Chromium when there is one (MUFL_WRITE_SCREENSHOTS=1: docs/screenshots/prometheus-*.png).
//
// Needs the Debian package prometheus. Where the binary is missing, CMake registers a test
// that says so and reports itself skipped (exit 77) instead of this one; should the binary
// vanish after configuring, this test does the same.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/chromium.h"
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

// Exits 77 (skipped) when the prometheus binary CMake found has gone since.
void require_prometheus() {
  if (access(PROMETHEUS_PATH, X_OK) != 0) {
    std::cout << "SKIP: " PROMETHEUS_PATH " not found (install the Debian package prometheus)" << std::endl;
    std::exit(77);
  }
}

// A scrape of one mufld every `interval` (a Prometheus duration), with mufl's rules evaluated
// as often.
void write_config(const std::string& path, uint16_t mufld_port, const std::string& interval = "1s") {
  std::ofstream out(path);
  out << "global:\n"
         "  scrape_interval: " << interval << "\n"
         "  scrape_timeout: " << interval << "\n"
         "  evaluation_interval: " << interval << "\n"
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
  require_prometheus();
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
  CHECK(get_all_items(c, "/v1/activities/" + id + "/rounds", token).size() == 4);
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

namespace {

// Unix time now, in seconds.
double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The expressions of every PromConsole.Graph call in a rendered console page, one list per
// graph, in page order. The console writes each expr as a plain "..." JavaScript string, or a
// [...] list of them (deploy/prometheus/consoles/mufl.html says so); an escape in one fails.
std::vector<std::vector<std::string>> graph_exprs(const std::string& page) {
  std::vector<std::vector<std::string>> graphs;
  const std::string call = "new PromConsole.Graph(";
  for (size_t at = page.find(call); at != std::string::npos; at = page.find(call, at + call.size())) {
    const size_t next = page.find(call, at + call.size());
    size_t i = page.find("expr:", at);
    REQUIRE(i < next);
    i += 5;
    auto skip = [&] {
      while (i < page.size() && (std::isspace(static_cast<unsigned char>(page[i])) || page[i] == ',')) ++i;
    };
    auto string = [&] {
      const size_t end = page.find('"', i + 1);
      REQUIRE(end != std::string::npos);
      std::string s = page.substr(i + 1, end - i - 1);
      INFO("expr " << s);
      REQUIRE(s.find('\\') == std::string::npos);
      i = end + 1;
      return s;
    };
    std::vector<std::string> exprs;
    skip();
    if (page[i] == '"') {
      exprs.push_back(string());
    } else {
      REQUIRE(page[i] == '[');
      ++i;
      for (skip(); page[i] == '"'; skip()) exprs.push_back(string());
      REQUIRE(page[i] == ']');
    }
    REQUIRE(!exprs.empty());
    graphs.push_back(exprs);
  }
  return graphs;
}

// The smallest and the largest value of a range-query series, NaN values skipped; NaN, NaN
// when it has none (or is null).
std::pair<double, double> value_range(const json& series) {
  double lo = std::nan(""), hi = std::nan("");
  if (!series.is_object()) return {lo, hi};
  for (const auto& v : series["values"]) {
    const double x = std::stod(v[1].get<std::string>());
    if (std::isnan(x)) continue;
    if (std::isnan(lo) || x < lo) lo = x;
    if (std::isnan(hi) || x > hi) hi = x;
  }
  return {lo, hi};
}
double max_value(const json& series) { return value_range(series).second; }

// The series of a range result whose `label` is `value`; null when there is none.
json series_with(const json& result, const std::string& label, const std::string& value) {
  for (const auto& s : result)
    if (s["metric"].value(label, "") == value) return s;
  return nullptr;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// `rounds` rounds of one client in 16 (0.05–0.5 s a round on a CPU slot, by the machine's
// load). The activities that train
// alone (merge false) get another seed: with the same configuration as the merging ones, the
// planner lets those join the group of a merge-false activity, which docs/merge-and-split.md
// says never happens.
std::string console_spec(const std::string& task, bool merge, int rounds = 8) {
  return R"({"name":")" + task + R"(","dataset":"synthetic","task":")" + task + R"(","rounds":)" +
         std::to_string(rounds) + R"(,"clients":16,"clients_per_round":1,"seed":)" + (merge ? "3" : "4") +
         R"(,"merge":)" + (merge ? "true" : "false") + "}";
}

}  // namespace

// The console deploy/prometheus/consoles/mufl.html, served by a real Prometheus with the
// console flags deploy/README.md gives, over a mufld that trains a workload on two CPU slots:
// two activities that train alone take both devices first, so the group that three compatible
// activities merge into waits (no_free_device), then trains, measures affinity and splits.
// The page renders (200, no template error), its tables hold a value in every cell, and every
// graph's expression, read from the page, returns series over the workload, with the merge, the
// split, the wait, both devices' rounds and moving power, and both tenants' energy in them. In
// Chromium (when there is one) every graph draws and the page logs no error.
// MUFL_WRITE_SCREENSHOTS=1 also writes docs/screenshots/prometheus-console.png and
// prometheus-graph.png (the graph page with three of the console's expressions).
TEST_CASE("e2e prometheus: the mufl console over a merge-and-split workload, every graph's expression has data") {
  require_prometheus();
  const double t0 = unix_now();
  TempDir dir;
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "cpu:2", "--torch-threads", "1", "--merge-window", "1", "--affinity-every", "4",
                      "--consolidation-fraction", "0.5", "--energy-meter", "model", "--db-sync", "normal"});
  HttpClient c("127.0.0.1", mufld.port());
  write_config(dir.file("prometheus.yml"), mufld.port(), "500ms");
  PrometheusProcess prom(PROMETHEUS_PATH, dir.file("prometheus.yml"), dir.path(),
                         {"--web.console.templates=" MUFL_SOURCE_DIR "/deploy/prometheus/consoles",
                          "--web.console.libraries=" MUFL_SOURCE_DIR "/deploy/prometheus/console_libraries"});
  INFO("prometheus log at start:\n" << prom.log_tail());
  const std::string sel = "job=\"" + kJob + "\"";
  bool ok = false;
  json r = prom.wait_for("up{" + sel + "}", [](const json& res) { return single_value(res) == 1; }, ok);
  REQUIRE(ok);

  // Tenant alpha has a budget (so the console shows its share used), beta none.
  auto ta = c.post("/v1/tenants", R"({"name":"alpha","quotas":{"energy_budget_joules":100000}})", kAdmin);
  auto tb = c.post("/v1/tenants", R"({"name":"beta"})", kAdmin);
  REQUIRE(ta.status == 201);
  REQUIRE(tb.status == 201);
  const json alpha = json::parse(ta.body), beta = json::parse(tb.body);
  // The two alone train 40 rounds: on an idle machine 8 rounds of synthetic took less than the
  // 1 s merge window, and the merged group then never waited.
  std::vector<std::pair<std::string, std::string>> posts = {{beta["token"], console_spec("parity", false, 40)},
                                                            {beta["token"], console_spec("parity", false, 40)},
                                                            {alpha["token"], console_spec("class", true)},
                                                            {alpha["token"], console_spec("class", true)},
                                                            {beta["token"], console_spec("segment", true)}};
  std::vector<std::pair<std::string, std::string>> ids;  // token, id
  const double posted_at = unix_now();
  for (const auto& [token, spec] : posts) {
    auto p = c.post("/v1/activities", spec, token);
    REQUIRE(p.status == 201);
    ids.emplace_back(token, json::parse(p.body)["id"]);
  }
  for (const auto& [token, id] : ids) {
    json a = wait_for(c, "/v1/activities/" + id, token, [](const json& j) {
      return j["state"] == "succeeded" || j["state"] == "failed" || j["state"] == "cancelled";
    });
    REQUIRE(a["state"] == "succeeded");
  }
  const std::string m = c.get("/metrics").body;
  INFO("groups: " << c.get("/v1/groups", kAdmin).body);
  REQUIRE(metric(m, R"(mufl_group_events_total{event="merge"})") == 1);
  REQUIRE(metric(m, R"(mufl_group_events_total{event="split"})") == 1);
  // The merged group's split: how many parts it made is the affinity's choice (the two `class`
  // activities are alike, so one pair or two singletons score about the same).
  const auto& [class_token, class_id] = ids[2];
  const std::string root = json::parse(c.get("/v1/activities/" + class_id, class_token).body)["groups"][0];
  const json merged = json::parse(c.get("/v1/groups/" + root, kAdmin).body);
  REQUIRE(merged["split"].is_object());
  const auto parts = static_cast<double>(merged["split"]["groups"].size());
  CHECK(parts >= 2);  // label and dense tasks apart
  const double rounds =
      metric(m, R"(mufl_fl_rounds_total{device="cpu:0"})", 0) + metric(m, R"(mufl_fl_rounds_total{device="cpu:1"})", 0);
  CHECK(rounds == 2 * 40 + 4 + parts * 4);  // the two alone; the merged group's 4 rounds, then each part's 4

  // Prometheus holds the end of the workload, and the rules have been evaluated on it.
  r = prom.wait_for("sum(mufl_fl_rounds_total{" + sel + "})",
                    [&](const json& res) { return single_value(res) == rounds; }, ok);
  INFO("rounds in prometheus: " << r.dump());
  REQUIRE(ok);
  r = prom.wait_for("mufl_activities{" + sel + ",state=\"succeeded\"}",
                    [](const json& res) { return single_value(res) == 5; }, ok);
  REQUIRE(ok);
  // (The rules keep instance, not job.)
  r = prom.wait_for("count(device:mufl_fl_rounds:rate5m > 0) == 2 and on () "
                    "count(tenant:mufl_tenant_energy_joules:rate15m > 0) == 2",
                    [](const json& res) { return res.size() == 1; }, ok);
  REQUIRE(ok);
  const double t1 = unix_now();

  // The page: rendered without a template error, every table cell with a value.
  auto page = prom.get("/consoles/mufl.html");
  INFO("console page:\n" << page.body.substr(0, 4000));
  REQUIRE(page.status == 200);
  CHECK(page.body.find("rror") == std::string::npos);  // "error executing template ...", or an Error
  CHECK(page.body.find("<h1>mufl: every mufld</h1>") != std::string::npos);
  CHECK(page.body.find("<td>cpu:0</td>") != std::string::npos);
  CHECK(page.body.find("<td>cpu:1</td>") != std::string::npos);
  CHECK(count(page.body, "<td>idle</td>") == 2);
  for (const json* t : {&alpha, &beta})
    CHECK(page.body.find("<td>" + (*t)["id"].get<std::string>() + "</td>") != std::string::npos);
  CHECK(count(page.body, "no budget") == 1);                 // beta
  CHECK(page.body.find(">-</a>") == std::string::npos);      // a drilldown whose query returned nothing
  CHECK(count(page.body, "class=\"prom_query_drilldown\"") == 4 + 2 * 3 + 2 * 3);  // mufld row, devices, tenants

  // Every graph's expressions, evaluated as the console's graphs do: a range query over the
  // workload, every 0.5 s up to t1 (when Prometheus held all of it).
  const double step = 0.5, start = t1 - std::ceil((t1 - t0) / step) * step;
  const auto graphs = graph_exprs(page.body);
  CHECK(graphs.size() == 10);
  std::map<std::string, json> results;  // expr -> range result
  for (const auto& exprs : graphs) {
    for (const auto& e : exprs) {
      INFO("expr: " << e);
      CHECK(e.find("instance=~'.*'") != std::string::npos);
      const json res = prom.query_range(e, start, t1, step);
      CHECK(!res.empty());
      bool has_value = false;
      for (const auto& s : res) has_value |= !std::isnan(max_value(s));
      CHECK(has_value);
      results[e] = res;
    }
  }
  auto result_of = [&](const std::string& part) {
    for (const auto& [e, res] : results)
      if (e.find(part) != std::string::npos) return res;
    FAIL("no graph uses " << part);
    return json();
  };
  const json waiting = result_of("mufl_scheduler_waiting_groups");
  INFO("waiting: " << waiting.dump());
  CHECK(max_value(series_with(waiting, "reason", "no_free_device")) >= 1);
  const json events = result_of("mufl_group_events_total");
  CHECK(max_value(series_with(events, "event", "merge")) > 0);
  CHECK(max_value(series_with(events, "event", "split")) > 0);
  const json rounds_rate = result_of("device:mufl_fl_rounds:rate5m");
  const json power = result_of("mufl_device_power_watts");
  for (const char* device : {"cpu:0", "cpu:1"}) {
    INFO("device " << device);
    CHECK(max_value(series_with(rounds_rate, "device", device)) > 0);
    const auto [idle, busy] = value_range(series_with(power, "device", device));
    CHECK(busy > idle);  // the power model's busy and idle watts
  }
  const json energy = result_of("tenant:mufl_tenant_energy_joules:rate15m");
  const json co2e = result_of("tenant:mufl_tenant_co2e_grams:rate1h");
  for (const json* t : {&alpha, &beta}) {
    CHECK(max_value(series_with(energy, "tenant", (*t)["id"])) > 0);
    CHECK(max_value(series_with(co2e, "tenant", (*t)["id"])) > 0);
  }
  const json groups = result_of("mufl_groups");
  CHECK(max_value(series_with(groups, "phase", "consolidating")) >= 1);
  CHECK(max_value(series_with(result_of("sum by (state) (mufl_activities"), "state", "succeeded")) == 5);

  // One mufld chosen: the same graphs, on its instance label.
  const std::string instance = "127.0.0.1:" + std::to_string(mufld.port());
  auto one = prom.get("/consoles/mufl.html?instance=" + url_encode(instance));
  REQUIRE(one.status == 200);
  CHECK(one.body.find("<h1>mufl: " + instance + "</h1>") != std::string::npos);
  const auto one_graphs = graph_exprs(one.body);
  REQUIRE(one_graphs.size() == graphs.size());
  CHECK(one_graphs[0][0].find("instance=~'" + instance + "'") != std::string::npos);
  CHECK(!prom.query_range(one_graphs[0][0], start, t1, step).empty());

  const std::string browser_binary = Chromium::find_binary();
  if (browser_binary.empty()) {
    WARN("no chromium on PATH (or MUFL_CHROMIUM): the console was not loaded in a browser");
    return;
  }
  // In a browser: every graph draws (an svg with its lines, no "No timeseries returned" or
  // "Error loading data"), and the page logs no error. The range is the workload's, from the
  // URL fragment the console's time control reads.
  Chromium browser(browser_binary);
  const std::string base = "http://127.0.0.1:" + std::to_string(prom.port());
  const int seconds = static_cast<int>(std::ceil(unix_now() - posted_at)) + 2;
  browser.navigate(base + "/consoles/mufl.html#pctc" +
                   url_encode(json{{"duration", seconds}, {"endTime", 0}}.dump()));
  browser.wait_for(
      "PromConsole._graph_registry.length > 0 && PromConsole._graph_registry.every("
      "g => g.rickshawGraph !== null || g.graphTd.querySelector('.prom_graph_error'))");
  CHECK(browser.eval("PromConsole._graph_registry.length").get<size_t>() == graphs.size());
  CHECK(browser.eval("document.querySelectorAll('.prom_graph_error').length").get<int>() == 0);
  CHECK(browser.eval("PromConsole._graph_registry.every(g => g.graphTd.querySelector('svg path') !== null)")
            .get<bool>());
  CHECK(browser.eval("PromConsole._graph_registry.every(g => g.legendDiv.querySelectorAll('li').length > 0)")
            .get<bool>());
  // The browser's own request for /favicon.ico (prom.lib's head names no icon) is no page error.
  auto page_errors = [&] {
    std::vector<std::string> errors;
    for (const auto& e : browser.errors())
      if (e.find("/favicon.ico") == std::string::npos) errors.push_back(e);
    return errors;
  };
  for (const auto& e : page_errors()) UNSCOPED_INFO("browser: " << e);
  CHECK(page_errors().empty());

  const char* write = std::getenv("MUFL_WRITE_SCREENSHOTS");
  if (!write || std::string(write) != "1") return;
  const std::string shots = MUFL_SOURCE_DIR "/docs/screenshots/";
  // The whole page in one viewport, so that the fixed navbar and time control sit at its ends
  // (a capture beyond the viewport paints them where the viewport was).
  auto screenshot = [&](const std::string& name) {
    const int height = browser.eval("document.documentElement.scrollHeight").get<int>();
    browser.call("Emulation.setDeviceMetricsOverride",
                 {{"width", 1280}, {"height", height}, {"deviceScaleFactor", 1}, {"mobile", false}});
    std::ofstream(shots + name, std::ios::binary) << browser.screenshot_png(false);
    browser.call("Emulation.clearDeviceMetricsOverride");
  };
  screenshot("prometheus-console.png");
  // The graph page with three of the console's expressions, over the same range.
  std::string url = base + "/graph?";
  int n = 0;
  for (const std::string part :
       {"device:mufl_fl_rounds:rate5m", "mufl_scheduler_waiting_groups", "tenant:mufl_tenant_energy_joules:rate15m"}) {
    for (const auto& [e, res] : results)
      if (e.find(part) != std::string::npos) {
        const std::string g = "g" + std::to_string(n++);
        url += g + ".expr=" + url_encode(e) + "&" + g + ".tab=0&" + g + ".range_input=" + std::to_string(seconds) +
               "s&";
      }
  }
  browser.navigate(url);
  browser.wait_for("document.querySelectorAll('.graph_area .graph svg path').length >= 3");
  // The graph page itself (the Debian package's classic UI) loads popper.js/popper.min.js, an
  // ES module, with a plain script tag: its one error, not the console's.
  for (const auto& e : page_errors())
    if (e.find("Unexpected token 'export'") == std::string::npos) FAIL_CHECK("graph page: " << e);
  screenshot("prometheus-graph.png");
}

// deploy/README.md, "A private or token-protected /metrics": Prometheus's `authorization`
// setting with a credentials file scrapes mufld's own metrics listener; a job with another
// token is refused (up 0), and so is one without any.
TEST_CASE("e2e prometheus: scrapes a --metrics-listen listener with a --metrics-token-file bearer token") {
  require_prometheus();
  TempDir dir;
  const std::string token = "e2e-scrape-token-0123456789";
  std::ofstream(dir.file("mufld-metrics.token")) << token << "\n";
  std::ofstream(dir.file("prometheus-good.token")) << token << "\n";
  std::ofstream(dir.file("prometheus-bad.token")) << "not-the-token\n";
  MufldProcess mufld(MUFLD_PATH, dir.path(), kAdmin,
                     {"--devices", "none", "--metrics-listen", "127.0.0.1:0", "--metrics-token-file",
                      dir.file("mufld-metrics.token")});
  REQUIRE(mufld.metrics_port() != 0);
  {
    std::ofstream out(dir.file("prometheus.yml"));
    const std::string target = "      - targets: ['127.0.0.1:" + std::to_string(mufld.metrics_port()) + "']\n";
    out << "global:\n  scrape_interval: 500ms\n  scrape_timeout: 500ms\nscrape_configs:\n";
    for (const char* job : {"good", "bad"})
      out << "  - job_name: " << job << "\n    authorization:\n      type: Bearer\n      credentials_file: "
          << dir.file(std::string("prometheus-") + job + ".token") << "\n    static_configs:\n" << target;
    out << "  - job_name: none\n    static_configs:\n" << target;
    REQUIRE(out);
  }
  PrometheusProcess prom(PROMETHEUS_PATH, dir.file("prometheus.yml"), dir.path());
  INFO("prometheus log:\n" << prom.log_tail());
  bool ok = false;
  prom.wait_for("up{job=\"good\"}", [](const json& res) { return single_value(res) == 1; }, ok);
  CHECK(ok);
  prom.wait_for("mufl_build_info{job=\"good\"}", [](const json& res) { return single_value(res) == 1; }, ok);
  CHECK(ok);
  for (const char* job : {"bad", "none"}) {
    INFO(job);
    prom.wait_for(std::string("up{job=\"") + job + "\"}", [](const json& res) { return single_value(res) == 0; }, ok);
    CHECK(ok);
    CHECK(prom.query(std::string("mufl_build_info{job=\"") + job + "\"}").empty());
  }
}
