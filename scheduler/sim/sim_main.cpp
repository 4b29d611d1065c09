// mufl-sim: replays a cluster trace through mufl's placement policies (docs/simulator.md).
//   mufl-sim [--trace FILE] [--nodes FILE] [--carbon FILE] [--policy NAME|all] [--json] ...
// Prints a table, one row per policy, the targets, and a last line of JSON. Exit 0 on
// success, 2 for bad flags or unreadable input, 1 when the replay fails.
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/time_format.h"
#include "scheduler/energy/carbon_intensity.h"
#include "scheduler/placement/placement.h"
#include "scheduler/sim/cluster_trace.h"
#include "scheduler/sim/simulator.h"

namespace po = boost::program_options;
using namespace mufl;
using namespace mufl::scheduler;

namespace {

constexpr double kTargetSeconds = 10;  // per policy, whole trace, 2 cores

int usage_error(const std::string& message) {
  std::cerr << "mufl-sim: " << message << "\n(mufl-sim --help lists the flags)\n";
  return 2;
}

nlohmann::json to_json(const SimResult& r, double seconds) {
  nlohmann::json by_model = nlohmann::json::object();
  for (const auto& [model, hours] : r.device_hours_by_model) by_model[model] = hours;
  nlohmann::json tenants = nlohmann::json::object();
  for (const auto& [name, t] : r.tenants)
    tenants[name] = {{"jobs", t.jobs}, {"avg_jct_s", t.avg_jct_s}, {"avg_queue_s", t.avg_queue_s},
                     {"mean_speed", t.mean_speed}};
  return {{"jobs", r.jobs},
          {"avg_jct_s", r.avg_jct_s},
          {"p95_jct_s", r.p95_jct_s},
          {"avg_queue_s", r.avg_queue_s},
          {"makespan_s", r.makespan_s},
          {"gpu_utilisation", r.gpu_utilisation},
          {"energy_kwh", r.energy_kwh},
          {"carbon_kg", r.carbon_kg},
          {"jain", r.jain},
          {"deadline_misses", r.deadline_misses},
          {"deadline_miss_fraction", r.jobs ? static_cast<double>(r.deadline_misses) / static_cast<double>(r.jobs) : 0.0},
          {"units", r.units},
          {"deferrals", r.deferrals},
          {"idle_floor_kwh", r.idle_floor_kwh},
          {"device_hours_by_model", by_model},
          {"tenants", tenants},
          {"seconds", seconds},
          {"seconds_vs_target", seconds / kTargetSeconds}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string trace_path, nodes_path, carbon_path, policy_arg, deferrable, device_choice, carbon_start;
  double slack = 2, unit_seconds = 0, eta = 0.9;
  int window_hours = 48;
  std::string node_order;
  uint64_t seed = 1;
  double nodes_fraction = 1, time_scale = 1;
  std::vector<std::string> weight_args;
  po::options_description desc(
      "mufl-sim: replay a GPU cluster trace through mufl's placement policies (docs/simulator.md)\n"
      "Paths default to the copies in the repository (run from its root).\nOptions");
  desc.add_options()
      ("help,h", "print this help")
      ("trace", po::value(&trace_path)->default_value("data/alibaba-gpu-v2023/openb_pod_list_default.csv"),
       "pods CSV (Alibaba GPU trace 2023 format)")
      ("nodes", po::value(&nodes_path)->default_value("data/alibaba-gpu-v2023/openb_node_list_gpu_node.csv"),
       "nodes CSV")
      ("carbon", po::value(&carbon_path)->default_value("data/carbon-intensity/CISO_2022_hourly.csv"),
       "hourly carbon-intensity CSV (Electricity Maps or EIA format)")
      ("carbon-start", po::value(&carbon_start)->default_value("first"),
       "the hour trace second 0 falls on: 'first' (the file's first hour) or an RFC 3339 time")
      ("policy", po::value(&policy_arg)->default_value("all"), "fifo, fair, energy, carbon, or all")
      ("json", "print only the JSON line")
      ("slack", po::value(&slack)->default_value(2.0), "deadline = arrival + slack x duration (>= 1)")
      ("unit-seconds", po::value(&unit_seconds)->default_value(0),
       "cut jobs into work units of at most this much work (0: a job is one unit)")
      ("deferrable", po::value(&deferrable)->default_value("all"),
       "which pods may be deferred: all, or best-effort (BE and Burstable QoS only)")
      ("eta", po::value(&eta)->default_value(0.9), "energy: weight of energy in Zeus's cost, [0, 1]")
      ("energy-device-choice", po::value(&device_choice)->default_value("on"),
       "energy: on = choose device and limit; off = fifo's device, choose the limit only")
      ("carbon-window-hours", po::value(&window_hours)->default_value(48), "carbon: look-ahead in hours")
      ("node-order", po::value(&node_order)->default_value("shuffled"),
       "order first fit walks the nodes in: shuffled (by --seed) or trace (file order)")
      ("seed", po::value(&seed)->default_value(1), "seed of the shuffled node order")
      ("nodes-fraction", po::value(&nodes_fraction)->default_value(1.0),
       "replay on the first ceil(F x nodes) nodes of the node order, (0, 1]; pods that fit none of them are left out "
       "(counted); a contention scenario: the whole trace on a part of the cluster")
      ("time-scale", po::value(&time_scale)->default_value(1.0),
       "arrivals S times as dense (>= 1): the time from the first arrival to each pod's is divided by S, its work "
       "and slack kept; a contention scenario: the same pods on the same cluster, compressed in time")
      ("tenant-weight", po::value(&weight_args)->composing(),
       "fair: TENANT=W, the tenant's (QoS class's) weight in the DRF order (> 0; default 1); repeatable");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  const bool json_only = vm.count("json") > 0;
  if (!(slack >= 1)) return usage_error("--slack must be at least 1");
  if (!(unit_seconds >= 0)) return usage_error("--unit-seconds must be >= 0");
  if (deferrable != "all" && deferrable != "best-effort") return usage_error("--deferrable must be all or best-effort");
 if (node_order != "shuffled" && node_order != "trace") return usage_error("--node-order must be shuffled or trace");
  if (device_choice != "on" && device_choice != "off") return usage_error("--energy-device-choice must be on or off");
  if (!(nodes_fraction > 0 && nodes_fraction <= 1)) return usage_error("--nodes-fraction must be in (0, 1]");
  if (!(time_scale >= 1 && time_scale <= 1e6)) return usage_error("--time-scale must be from 1 to 1000000");
  std::map<std::string, double> weights;
  for (const std::string& w : weight_args) {
    const size_t eq = w.find('=');
    double v = 0;
    try {
      size_t used = 0;
      if (eq != std::string::npos) v = std::stod(w.substr(eq + 1), &used);
      if (eq == std::string::npos || eq == 0 || used != w.size() - eq - 1) v = 0;
    } catch (const std::exception&) {
      v = 0;
    }
    if (!(v > 0 && v <= 1000)) return usage_error("--tenant-weight must be TENANT=W with W in (0, 1000]: " + w);
    weights[w.substr(0, eq)] = v;
  }
  std::vector<std::string> policies;
  if (policy_arg == "all") {
    policies = policy_names();
  } else {
    policies = {policy_arg};
  }

  auto pods = read_trace_pods(trace_path);
  if (!pods.ok()) return usage_error("--trace: " + pods.status().message());
  auto trace_nodes = read_trace_nodes(nodes_path);
  if (!trace_nodes.ok()) return usage_error("--nodes: " + trace_nodes.status().message());
  auto carbon = CarbonIntensity::load_csv(carbon_path);
  if (!carbon.ok()) return usage_error("--carbon: " + carbon.status().message());
  auto nodes = nodes_from_trace(*trace_nodes);
  if (!nodes.ok()) return usage_error("--nodes: " + nodes.status().message());

  SimOptions so;
  so.slack_factor = slack;
  so.unit_seconds = unit_seconds;
  so.defer_best_effort_only = deferrable == "best-effort";
  so.tenant_weights = weights;
  if (carbon_start == "first") {
    so.carbon_origin_unix_s = carbon->first_hour();
  } else {
    std::optional<int64_t> ms = parse_rfc3339(carbon_start);
    if (!ms) return usage_error("--carbon-start: not 'first' or an RFC 3339 time: " + carbon_start);
    so.carbon_origin_unix_s = *ms / 1000;
  }
  PolicyOptions popt;
  popt.eta = eta;
  popt.energy_device_choice = device_choice == "on";
  popt.carbon = &*carbon;
  popt.carbon_origin_unix_s = so.carbon_origin_unix_s;
  popt.carbon_window_hours = window_hours;
  std::vector<Policy> built;
  for (const std::string& name : policies) {
    auto p = make_policy(name, popt);
    if (!p.ok()) return usage_error("--policy/--eta/--carbon-window-hours: " + p.status().message());
    built.push_back(std::move(*p));
  }

  if (node_order == "shuffled") shuffle_nodes(*nodes, seed);
  const size_t all_nodes = nodes->size();
  nodes->resize(std::max<size_t>(1, static_cast<size_t>(std::ceil(nodes_fraction * static_cast<double>(all_nodes)))));
  size_t dropped = 0;
  std::vector<SimJob> trace_jobs = jobs_from_trace(*pods, so);
  compress_arrivals(trace_jobs, time_scale);
  const std::vector<SimJob> jobs = jobs_that_fit(trace_jobs, *nodes, dropped);
  size_t gpus = 0;
  for (const Node& n : *nodes) gpus += n.devices.size();
  if (!json_only) {
    std::printf("mufl-sim: %zu pods on %zu nodes (%zu GPUs); carbon %s from %s; slack %.2f; units %s; deferrable %s\n",
                jobs.size(), nodes->size(), gpus, carbon_path.c_str(),
                format_rfc3339(so.carbon_origin_unix_s * 1000).c_str(), slack,
                unit_seconds > 0 ? (std::to_string(static_cast<long long>(unit_seconds)) + " s").c_str() : "whole jobs",
                deferrable.c_str());
    if (nodes->size() < all_nodes || time_scale > 1)
      std::printf("mufl-sim: contention: %zu of %zu nodes (--nodes-fraction %g), arrivals x%g as dense (--time-scale); "
                  "%zu pods fit none of the nodes and are left out\n",
                  nodes->size(), all_nodes, nodes_fraction, time_scale, dropped);
    std::printf("%-7s %7s %10s %10s %9s %9s %7s %10s %10s %6s %12s %7s\n", "policy", "jobs", "jct_avg_s", "jct_p95_s",
                "queue_s", "makespan_d", "util_%", "energy_kWh", "kgCO2e", "jain", "dl_miss", "sec");
  }
  nlohmann::json out = {{"sim", "mufl-sim"}, {"trace", trace_path}, {"nodes", nodes_path}, {"carbon", carbon_path},
                        {"slack", slack}, {"unit_seconds", unit_seconds}, {"deferrable", deferrable},
                        {"eta", eta}, {"energy_device_choice", device_choice == "on"},
                        {"node_order", node_order}, {"seed", seed},
                        {"nodes_fraction", nodes_fraction}, {"time_scale", time_scale}, {"nodes_used", nodes->size()}, {"gpus", gpus},
                        {"pods_left_out", dropped}, {"tenant_weights", weights},
                        {"policies", nlohmann::json::object()}};
  std::map<std::string, SimResult> results;
  for (const Policy& p : built) {
    const auto start = std::chrono::steady_clock::now();
    auto r = simulate(jobs, *nodes, p, *carbon, so);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!r.ok()) {
      std::cerr << "mufl-sim: " << p.name() << ": " << r.status().message() << "\n";
      return 1;
    }
    results[p.name()] = *r;
    out["policies"][p.name()] = to_json(*r, secs);
    if (!json_only)
      std::printf("%-7s %7zu %10.0f %10.0f %9.1f %9.2f %7.3f %10.1f %10.1f %6.3f %6zu %5.2f%% %7.2f\n",
                  p.name().c_str(), r->jobs, r->avg_jct_s, r->p95_jct_s, r->avg_queue_s, r->makespan_s / 86400,
                  100 * r->gpu_utilisation, r->energy_kwh, r->carbon_kg, r->jain, r->deadline_misses,
                  100.0 * static_cast<double>(r->deadline_misses) / static_cast<double>(std::max<size_t>(1, r->jobs)),
                  secs);
    if (!json_only)
      for (const auto& [name, t] : r->tenants)
        std::printf("  %-10s %6zu jobs  jct_avg_s %10.0f  queue_s %10.1f  speed %.3f\n", name.c_str(), t.jobs,
                    t.avg_jct_s, t.avg_queue_s, t.mean_speed);
  }
  // Targets (issue 5): against fifo on the same inputs.
  nlohmann::json targets = nlohmann::json::object();
  if (results.count("fifo")) {
    const SimResult& f = results["fifo"];
    if (results.count("energy")) {
      const SimResult& e = results["energy"];
      const double er = e.energy_kwh / f.energy_kwh, jr = e.avg_jct_s / f.avg_jct_s;
      targets["energy_vs_fifo"] = er;
      targets["energy_jct_vs_fifo"] = jr;
      targets["energy_met"] = er <= 0.85 && jr <= 1.10;
      if (!json_only)
        std::printf("target energy: energy %.3f x fifo (<= 0.85), avg JCT %.3f x fifo (<= 1.10): %s\n", er, jr,
                    er <= 0.85 && jr <= 1.10 ? "met" : "MISSED");
    }
    if (results.count("carbon")) {
      const SimResult& c = results["carbon"];
      const double cr = c.carbon_kg / f.carbon_kg;
      const double miss = static_cast<double>(c.deadline_misses) / static_cast<double>(std::max<size_t>(1, c.jobs));
      targets["carbon_vs_fifo"] = cr;
      targets["carbon_deadline_miss_fraction"] = miss;
      targets["carbon_met"] = cr <= 0.80 && miss <= 0.05;
      if (!json_only)
        std::printf("target carbon: CO2e %.3f x fifo (<= 0.80), deadline misses %.2f%% (<= 5%%): %s\n", cr,
                    100 * miss, cr <= 0.80 && miss <= 0.05 ? "met" : "MISSED");
    }
  }
  bool fast = true;
  for (const auto& [name, p] : out["policies"].items()) fast = fast && p["seconds"].get<double>() <= kTargetSeconds;
  targets["speed_met"] = fast;
  out["targets"] = targets;
  if (!json_only) std::printf("target speed: every policy under %.0f s: %s\n", kTargetSeconds, fast ? "met" : "MISSED");
  std::cout << out.dump() << std::endl;
  return 0;
}
