#include "scheduler/sim/simulator.h"

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

TEST_CASE("simulator: jobs_that_fit leaves out the jobs no node could ever run, and counts them") {
  PowerProfile p = gpu();
  SimJob big = job("huge", 0, 10);
  big.devices = 4;
  SimJob hungry = job("hungry", 0, 10);
  hungry.cpu_milli = 5000;  // the node has 1000
  SimJob host = job("host", 0, 10);
  host.devices = 0;
  size_t dropped = 99;
  auto kept = jobs_that_fit({job("a", 0, 10), big, hungry, host, job("b", 5, 10, 0.5)}, one_node(&p), dropped);
  CHECK(dropped == 2);
  REQUIRE(kept.size() == 3);
  CHECK(kept[0].id == "a");
  CHECK(kept[1].id == "host");
  CHECK(kept[2].id == "b");
  CHECK(simulate(kept, one_node(&p), *make_policy("fifo"), CarbonIntensity::constant(1), {}).ok());
}

TEST_CASE("simulator: compress_arrivals packs arrivals and keeps work and slack") {
  std::vector<SimJob> jobs = {job("a", 100, 50), job("b", 110, 50), job("c", 200, 50)};
  jobs[1].deadline_s = 110 + 80;
  jobs[2].deadline_s = kNoDeadline;
  compress_arrivals(jobs, 10);
  CHECK(jobs[0].arrival_s == 100);
  CHECK(jobs[1].arrival_s == 101);
  CHECK(jobs[2].arrival_s == 110);
  CHECK(jobs[1].deadline_s == 101 + 80);
  CHECK(jobs[2].deadline_s == kNoDeadline);
  CHECK(jobs[1].work_s == 50);
  compress_arrivals(jobs, 1);  // no change
  CHECK(jobs[2].arrival_s == 110);
}

TEST_CASE("simulator: per-tenant figures, and fair's tenant weights under contention") {
  // One node of three GPUs. Tenant a submits a job of 100 s every second from t = 0, tenant b
  // likewise from t = 20, twelve each: more work than GPUs, and GPUs free one at a time. fifo
  // serves in arrival order, all of a's first; fair gives b its share as soon as it has work
  // (one GPU in three: at equal shares the older job goes first); with weight 3 for b (its
  // dominant share over its weight) b gets two of the three.
  PowerProfile p = gpu();
  std::vector<Node> nodes = one_node(&p);
  nodes[0].devices.assign(3, DeviceLoad{});
  std::vector<SimJob> jobs;
  for (int i = 0; i < 12; ++i) {
    jobs.push_back(job("a" + std::to_string(i), i, 100));
    jobs.back().tenant = "a";
    jobs.push_back(job("b" + std::to_string(i), 20 + i, 100));
    jobs.back().tenant = "b";
  }
  const CarbonIntensity ci = CarbonIntensity::constant(1);
  auto fifo = simulate(jobs, nodes, *make_policy("fifo"), ci, {});
  auto fair = simulate(jobs, nodes, *make_policy("fair"), ci, {});
  SimOptions weighted;
  weighted.tenant_weights = {{"b", 3}};
  auto fair3 = simulate(jobs, nodes, *make_policy("fair"), ci, weighted);
  REQUIRE(fifo.ok());
  REQUIRE(fair.ok());
  REQUIRE(fair3.ok());
  for (const SimResult* r : {&*fifo, &*fair, &*fair3}) {
    REQUIRE(r->tenants.size() == 2);
    CHECK(r->tenants.at("a").jobs == 12);
    CHECK(r->tenants.at("b").jobs == 12);
    CHECK(r->units == 24);
  }
  INFO("avg JCT a/b: fifo " << fifo->tenants.at("a").avg_jct_s << "/" << fifo->tenants.at("b").avg_jct_s
                            << ", fair " << fair->tenants.at("a").avg_jct_s << "/" << fair->tenants.at("b").avg_jct_s
                            << ", fair (b x3) " << fair3->tenants.at("a").avg_jct_s << "/"
                            << fair3->tenants.at("b").avg_jct_s << "; jain " << fifo->jain << " " << fair->jain << " "
                            << fair3->jain);
  // fair evens the tenants out against fifo; b's weight tilts it further towards b.
  CHECK(fair->tenants.at("b").avg_jct_s < fifo->tenants.at("b").avg_jct_s);
  CHECK(fair->jain > fifo->jain);
  CHECK(fair3->tenants.at("b").avg_jct_s < fair->tenants.at("b").avg_jct_s);
  CHECK(fair3->tenants.at("b").avg_queue_s < fair->tenants.at("b").avg_queue_s);
  CHECK(fair3->tenants.at("a").avg_jct_s > fair->tenants.at("a").avg_jct_s);
  // Jain's index is over the tenants' mean speed.
  CHECK(fair->jain == Approx(jain_index({fair->tenants.at("a").mean_speed, fair->tenants.at("b").mean_speed})));
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
  CHECK(run("cd " + root + " && " + sim + " --nodes-fraction 0").first == 2);
  CHECK(run("cd " + root + " && " + sim + " --nodes-fraction 1.5").first == 2);
  CHECK(run("cd " + root + " && " + sim + " --tenant-weight LS").first == 2);
  CHECK(run("cd " + root + " && " + sim + " --tenant-weight LS=0").first == 2);
  CHECK(run("cd " + root + " && " + sim + " --tenant-weight =2").first == 2);
  CHECK(run("cd " + root + " && " + sim + " --tenant-weight LS=2x").first == 2);
  CHECK(run("cd " + root + " && " + sim + " --time-scale 0.5").first == 2);
}

TEST_CASE("mufl-sim: a contention scenario on part of the cluster, with per-tenant figures") {
  const std::string root = MUFL_SOURCE_DIR;
  auto [rc, out] = run("cd " + root + " && " + std::string(MUFL_SIM_PATH) +
                       " --policy fair --nodes-fraction 0.01 --tenant-weight LS=2 --json");
  REQUIRE(rc == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j.at("nodes_used") == 13);  // ceil(0.01 x 1213)
  CHECK(j.at("tenant_weights").at("LS") == 2);
  const auto& f = j.at("policies").at("fair");
  CHECK(f.at("jobs").get<size_t>() + j.at("pods_left_out").get<size_t>() == 8152);
  CHECK(f.at("avg_queue_s").get<double>() > 0);  // it does queue
  for (const char* t : {"LS", "BE", "Burstable", "Guaranteed"}) {
    INFO(t);
    REQUIRE(f.at("tenants").contains(t));
    CHECK(f.at("tenants").at(t).at("jobs").get<size_t>() > 0);
    CHECK(f.at("tenants").at(t).contains("avg_jct_s"));
  }
}
