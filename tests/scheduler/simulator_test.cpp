#include "scheduler/simulator.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/wait.h>

using namespace mufl;
using namespace mufl::scheduler;

namespace {
PowerProfile gpu() {
  PowerProfile p;
  p.model = std::string("X");
  p.idle_watts = 20;
  p.points = {{100, 100, 1.5}, {200, 150, 1.1}, {300, 200, 1.0}};
  p.relative_speed = 1;
  return p;
}

std::vector<Node> one_node(const PowerProfile* p) {
  Node n;
  n.name = std::string("n0");
  n.profile = p;
  n.devices.assign(1, DeviceLoad{});
  n.cpu_milli_free = 1000;
  n.memory_mib_free = 1000;
  return {n};
}

SimJob job(const std::string& id, int64_t arrival, double work, double share = 1) {
  SimJob j;
  j.id = std::string(id);
  j.tenant = std::string("t");
  j.arrival_s = arrival;
  j.work_s = work;
  j.device_share = share;
  return j;
}

// Runs a command, returns (exit status, stdout).
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* f = popen((cmd + " 2>/dev/null").c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int status = pclose(f);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}
}  // namespace

TEST_CASE("simulator: two jobs on one GPU under fifo, by hand") {
  PowerProfile p = gpu();
  CarbonIntensity ci = CarbonIntensity::constant(100);
  std::vector<SimJob> jobs = {job("a", 0, 100), job("b", 50, 100)};
  jobs[1].deadline_s = 120;
  auto r = simulate(jobs, one_node(&p), *make_policy("fifo"), ci, {});
  REQUIRE(r.ok());
  CHECK(r->jobs == 2);
  CHECK(r->avg_jct_s == Approx(125));    // 100 and 150 (b waits 50 s)
  CHECK(r->p95_jct_s == Approx(150));
  CHECK(r->avg_queue_s == Approx(25));
  CHECK(r->makespan_s == Approx(200));
  CHECK(r->energy_kwh == Approx(200.0 * 200 / 3.6e6));  // 200 W busy for 200 s
  CHECK(r->carbon_kg == Approx(r->energy_kwh * 100 / 1000));
  CHECK(r->gpu_utilisation == Approx(1.0));
  CHECK(r->deadline_misses == 1);                 // b finishes at 200 > 120
  CHECK(r->jain == Approx(1.0));
  CHECK(r->idle_floor_kwh == Approx(20.0 * 200 / 3.6e6));
  CHECK(r->device_hours_by_model.at("X") == Approx(200.0 / 3600));
}

TEST_CASE("simulator: energy with eta 1 runs at the lowest limit and stretches the jobs") {
  PowerProfile p = gpu();
  CarbonIntensity ci = CarbonIntensity::constant(100);
  std::vector<SimJob> jobs = {job("a", 0, 100), job("b", 50, 100)};
  PolicyOptions o;
  o.eta = 1;
  auto r = simulate(jobs, one_node(&p), *make_policy("energy", o), ci, {});
  REQUIRE(r.ok());
  CHECK(r->avg_jct_s == Approx((150 + 250) / 2.0));  // 150 s each; b starts at 150
  CHECK(r->makespan_s == Approx(300));
  CHECK(r->energy_kwh == Approx(100.0 * 300 / 3.6e6));  // 100 W for 300 s: 25 % less than fifo
}

TEST_CASE("simulator: shares of one GPU add up, and units split a job") {
  PowerProfile p = gpu();
  CarbonIntensity ci = CarbonIntensity::constant(100);
  std::vector<SimJob> jobs = {job("a", 0, 100, 0.25), job("b", 0, 100, 0.25)};
  auto r = simulate(jobs, one_node(&p), *make_policy("fifo"), ci, {});
  REQUIRE(r.ok());
  CHECK(r->avg_jct_s == Approx(100));
  CHECK(r->energy_kwh == Approx((20 + 0.5 * 180) * 100 / 3.6e6));  // one device at u = 0.5
  CHECK(r->gpu_utilisation == Approx(0.5));

  SimOptions units;
  units.unit_seconds = 40;
  auto split = simulate({job("c", 0, 100)}, one_node(&p), *make_policy("fifo"), ci, units);
  REQUIRE(split.ok());
  CHECK(split->units == 3);  // 40 + 40 + 20
  CHECK(split->avg_jct_s == Approx(100));
}

TEST_CASE("simulator: carbon holds nothing on a flat series and takes the least-energy limit") {
  PowerProfile p = gpu();
  std::vector<SimJob> jobs = {job("a", 0, 600)};
  jobs[0].deadline_s = 7200;
  CarbonIntensity flat = CarbonIntensity::constant(100);
  PolicyOptions o;
  o.carbon = &flat;
  auto r = simulate(jobs, one_node(&p), *make_policy("carbon", o), flat, {});
  REQUIRE(r.ok());
  CHECK(r->deferrals == 0);  // nothing cleaner ahead
  CHECK(r->avg_jct_s == Approx(600 * 1.5));  // carbon also picks the least-energy limit
}

TEST_CASE("simulator: a job that fits no node is an error naming it") {
  PowerProfile p = gpu();
  SimJob big = job("huge", 0, 10);
  big.devices = 4;
  auto r = simulate({big}, one_node(&p), *make_policy("fifo"), CarbonIntensity::constant(1), {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kFailedPrecondition);
  CHECK(r.status().message().find("huge") != std::string::npos);
}

TEST_CASE("simulator: Jain's index") {
  CHECK(jain_index({1, 1, 1}) == Approx(1));
  CHECK(jain_index({1, 0, 0, 0}) == Approx(0.25));
  CHECK(jain_index({}) == 1);
}

TEST_CASE("simulator: trace jobs take QoS as tenant and deadline from the slack factor") {
  TracePod p;
  p.name = std::string("p");
  p.qos = std::string("LS");
  p.num_gpu = 1;
  p.gpu_milli = 500;
  p.creation_s = 100;
  p.scheduled_s = 110;
  p.deletion_s = 210;
  SimOptions o;
  o.slack_factor = 3;
  o.defer_best_effort_only = true;
  auto jobs = jobs_from_trace({p}, o);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].tenant == "LS");
  CHECK(jobs[0].work_s == 100);
  CHECK(jobs[0].device_share == 0.5);
  CHECK(jobs[0].deadline_s == 100 + 300);
  CHECK_FALSE(jobs[0].deferrable);  // LS is not best effort
}

TEST_CASE("mufl-sim: the shipped trace under fifo, and bad flags") {
  const std::string sim = MUFL_SIM_PATH;
  const std::string root = MUFL_SOURCE_DIR;
  auto [rc, out] = run("cd " + root + " && " + sim + " --policy fifo --json");
  REQUIRE(rc == 0);
  auto j = nlohmann::json::parse(out);
  const auto& f = j.at("policies").at("fifo");
  CHECK(f.at("jobs") == 8152);
  for (const char* k : {"avg_jct_s", "p95_jct_s", "avg_queue_s", "makespan_s", "gpu_utilisation", "energy_kwh",
                        "carbon_kg", "jain", "deadline_misses", "seconds"}) {
    INFO(k);
    CHECK(f.contains(k));
  }
  CHECK(f.at("energy_kwh").get<double>() > 0);
  CHECK(run(sim + " --no-such-flag").first == 2);
  CHECK(run(sim + " --trace /nonexistent.csv").first == 2);
  CHECK(run("cd " + root + " && " + sim + " --policy nope").first == 2);
  CHECK(run(sim + " --help").first == 0);
}
