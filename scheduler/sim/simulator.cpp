#include "scheduler/sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <queue>
#include <random>
#include <unordered_map>

namespace mufl::scheduler {
namespace {

struct Running {
  int64_t end_s;
  size_t job;
  Candidate where;
  bool operator>(const Running& o) const { return end_s != o.end_s ? end_s > o.end_s : job > o.job; }
};

struct Wake {
  int64_t at_s;
  size_t job;
  bool operator>(const Wake& o) const { return at_s != o.at_s ? at_s > o.at_s : job > o.job; }
};

struct JobState {
  WorkUnit unit;           // the current (or next) unit
  double remaining_s = 0;  // reference work not yet run, including the current unit
  double ran_s = 0;        // seconds its units ran
  int64_t finish_s = -1;
  size_t next_unit = 0;
};

// Energy and carbon bookkeeping of one device.
struct Meter {
  int64_t last_s = 0;
  double watts = 0;
  double share = 0;
};

}  // namespace

double jain_index(const std::vector<double>& x) {
  double sum = 0, sq = 0;
  for (double v : x) {
    sum += v;
    sq += v * v;
  }
  if (x.empty() || sq == 0) return 1;
  return sum * sum / (static_cast<double>(x.size()) * sq);
}

std::vector<SimJob> jobs_from_trace(const std::vector<TracePod>& pods, const SimOptions& o) {
  std::vector<SimJob> jobs;
  jobs.reserve(pods.size());
  for (const TracePod& p : pods) {
    SimJob j;
    j.id = p.name;
    j.tenant = p.qos.empty() ? "unknown" : p.qos;
    j.arrival_s = p.creation_s;
    j.work_s = static_cast<double>(p.duration_s());
    j.devices = p.num_gpu;
    j.device_share = p.num_gpu == 1 ? p.gpu_milli / 1000.0 : 1.0;
    j.cpu_milli = p.cpu_milli;
    j.memory_mib = p.memory_mib;
    j.deferrable = !o.defer_best_effort_only || p.qos == "BE" || p.qos == "Burstable";
    j.deadline_s = j.arrival_s + static_cast<int64_t>(std::ceil(o.slack_factor * j.work_s));
    jobs.push_back(std::move(j));
  }
  return jobs;
}

Result<std::vector<Node>> nodes_from_trace(const std::vector<TraceNode>& trace_nodes) {
  std::vector<Node> nodes;
  nodes.reserve(trace_nodes.size());
  const std::vector<PowerProfile>& profiles = builtin_power_profiles();
  for (const TraceNode& t : trace_nodes) {
    Node n;
    n.name = t.name;
    n.cpu_milli_free = t.cpu_milli;
    n.memory_mib_free = t.memory_mib;
    if (t.gpus > 0) {
      Result<PowerProfile> found = find_power_profile(t.model);
      if (!found.ok()) return Status::not_found("node " + t.name + ": " + found.status().message());
      for (const PowerProfile& p : profiles)  // point into the registry, which lives forever
        if (p.model == found->model) n.profile = &p;
      n.devices.assign(static_cast<size_t>(t.gpus), DeviceLoad{});
    }
    nodes.push_back(std::move(n));
  }
  return nodes;
}

std::vector<SimJob> jobs_that_fit(const std::vector<SimJob>& jobs, const std::vector<Node>& nodes, size_t& dropped) {
  const std::unique_ptr<Filter> fit = make_resource_fit();
  const PlacementState state;
  std::vector<SimJob> out;
  out.reserve(jobs.size());
  dropped = 0;
  for (const SimJob& j : jobs) {
    WorkUnit u;
    u.devices = j.devices;
    u.device_share = j.device_share;
    u.cpu_milli = j.cpu_milli;
    u.memory_mib = j.memory_mib;
    const bool fits = std::any_of(nodes.begin(), nodes.end(),
                                  [&](const Node& n) { return fit->filter(state, u, n) == nullptr; });
    if (fits)
      out.push_back(j);
    else
      ++dropped;
  }
  return out;
}

void compress_arrivals(std::vector<SimJob>& jobs, double scale) {
  if (jobs.empty() || !(scale > 1)) return;
  int64_t first = jobs.front().arrival_s;
  for (const SimJob& j : jobs) first = std::min(first, j.arrival_s);
  for (SimJob& j : jobs) {
    const int64_t arrival =
        first + static_cast<int64_t>(std::floor(static_cast<double>(j.arrival_s - first) / scale));
    if (j.deadline_s != kNoDeadline) j.deadline_s -= j.arrival_s - arrival;
    j.arrival_s = arrival;
  }
}

void shuffle_nodes(std::vector<Node>& nodes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = nodes.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);  // bias below 1e-15 for these sizes
    std::swap(nodes[i - 1], nodes[j]);
  }
}

Result<SimResult> simulate(const std::vector<SimJob>& jobs, std::vector<Node> nodes, const Policy& policy,
                           const CarbonIntensity& carbon, const SimOptions& o) {
  SimResult r;
  r.policy = policy.name();
  r.jobs = jobs.size();
  if (jobs.empty()) return r;

  // Device meters, flattened: meters[offset[node] + device].
  std::vector<size_t> offset(nodes.size() + 1, 0);
  for (size_t i = 0; i < nodes.size(); ++i) offset[i + 1] = offset[i] + nodes[i].devices.size();
  std::vector<Meter> meters(offset.back());
  double energy_j = 0, carbon_g = 0, share_s = 0;
  std::unordered_map<const PowerProfile*, double> on_s_by_profile;
  auto settle = [&](size_t node, size_t dev, int64_t t) {
    Meter& m = meters[offset[node] + dev];
    if (t > m.last_s && m.watts > 0) {
      const double dt = static_cast<double>(t - m.last_s);
      const double j = m.watts * dt;
      energy_j += j;
      carbon_g += j / 3.6e6 * carbon.mean_over(o.carbon_origin_unix_s + m.last_s, o.carbon_origin_unix_s + t);
      share_s += m.share * dt;
      on_s_by_profile[nodes[node].profile] += dt;
    }
    m.last_s = t;
  };
  auto refresh = [&](size_t node, size_t dev) {
    Meter& m = meters[offset[node] + dev];
    const DeviceLoad& d = nodes[node].devices[dev];
    m.share = std::min(1.0, d.used_share);
    m.watts = d.units > 0 ? nodes[node].profile->watts_at(m.share, d.limit_watts) : 0.0;
  };

  double total_cpu = 0, total_mem = 0, total_dev = 0;
  for (const Node& n : nodes) {
    total_cpu += n.cpu_milli_free;
    total_mem += n.memory_mib_free;
    total_dev += static_cast<double>(n.devices.size());
  }
  struct Usage {
    double dev = 0, cpu = 0, mem = 0;
  };
  std::unordered_map<std::string, Usage> usage;
  // The tenant's dominant share (the largest of its device, CPU and memory shares) over its weight.
  auto weighted_share = [&](const std::string& tenant, const Usage& us) {
    double dom = 0;
    if (total_dev > 0) dom = std::max(dom, us.dev / total_dev);
    if (total_cpu > 0) dom = std::max(dom, us.cpu / total_cpu);
    if (total_mem > 0) dom = std::max(dom, us.mem / total_mem);
    const auto w = o.tenant_weights.find(tenant);
    return w == o.tenant_weights.end() || !(w->second > 0) ? dom : dom / w->second;
  };

  std::vector<JobState> state(jobs.size());
  auto make_unit = [&](size_t j, int64_t ready) {
    JobState& s = state[j];
    const SimJob& job = jobs[j];
    const double work = o.unit_seconds > 0 ? std::min(o.unit_seconds, s.remaining_s) : s.remaining_s;
    WorkUnit& u = s.unit;
    u.id = job.id + "#" + std::to_string(s.next_unit++);
    u.tenant = job.tenant;
    u.ready_s = ready;
    u.deadline_s = job.deadline_s;
    u.work_s = work;
    u.remaining_work_s = s.remaining_s;
    u.devices = job.devices;
    u.device_share = job.device_share;
    u.cpu_milli = job.cpu_milli;
    u.memory_mib = job.memory_mib;
    u.deferrable = job.deferrable;
  };

  std::vector<size_t> order(jobs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return jobs[a].arrival_s < jobs[b].arrival_s; });
  const int64_t first_arrival = jobs[order.front()].arrival_s;
  for (Meter& m : meters) m.last_s = first_arrival;

  std::priority_queue<Running, std::vector<Running>, std::greater<>> running;
  std::priority_queue<Wake, std::vector<Wake>, std::greater<>> deferred;
  std::vector<size_t> pending;
  size_t next_arrival = 0;

  auto apply = [&](size_t j, const Candidate& c, int64_t t) {
    const WorkUnit& u = state[j].unit;
    Node& n = nodes[c.node];
    n.cpu_milli_free -= u.cpu_milli;
    n.memory_mib_free -= u.memory_mib;
    const double add = u.devices == 1 ? u.device_share : 1.0;
    for (int dv : c.devices) {
      const size_t dev = static_cast<size_t>(dv);
      settle(c.node, dev, t);
      DeviceLoad& d = n.devices[dev];
      if (d.units == 0) d.limit_watts = c.limit_watts;
      d.used_share += add;
      d.units += 1;
      refresh(c.node, dev);
    }
    Usage& us = usage[u.tenant];
    us.dev += u.devices == 1 ? u.device_share : u.devices;
    us.cpu += u.cpu_milli;
    us.mem += u.memory_mib;
    const int64_t run = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(c.run_s - 1e-9)));
    running.push({t + run, j, c});
    state[j].ran_s += static_cast<double>(run);
    ++r.units;
  };
  auto release = [&](const Running& done) {
    const WorkUnit& u = state[done.job].unit;
    Node& n = nodes[done.where.node];
    n.cpu_milli_free += u.cpu_milli;
    n.memory_mib_free += u.memory_mib;
    const double add = u.devices == 1 ? u.device_share : 1.0;
    for (int dv : done.where.devices) {
      const size_t dev = static_cast<size_t>(dv);
      settle(done.where.node, dev, done.end_s);
      DeviceLoad& d = n.devices[dev];
      d.units -= 1;
      d.used_share = d.units == 0 ? 0.0 : std::max(0.0, d.used_share - add);
      refresh(done.where.node, dev);
    }
    Usage& us = usage[u.tenant];
    us.dev -= u.devices == 1 ? u.device_share : u.devices;
    us.cpu -= u.cpu_milli;
    us.mem -= u.memory_mib;
  };

  std::vector<const WorkUnit*> batch;
  std::unordered_map<std::string, double> shares;
  std::unordered_map<const WorkUnit*, size_t> job_of;
  while (next_arrival < order.size() || !running.empty() || !deferred.empty()) {
    int64_t t = std::numeric_limits<int64_t>::max();
    if (next_arrival < order.size()) t = std::min(t, jobs[order[next_arrival]].arrival_s);
    if (!running.empty()) t = std::min(t, running.top().end_s);
    if (!deferred.empty()) t = std::min(t, deferred.top().at_s);

    while (!running.empty() && running.top().end_s == t) {
      Running done = running.top();
      running.pop();
      release(done);
      JobState& s = state[done.job];
      s.remaining_s -= s.unit.work_s;
      if (s.remaining_s > 0.5) {
        make_unit(done.job, t);
        pending.push_back(done.job);
      } else {
        s.finish_s = t;
      }
    }
    while (next_arrival < order.size() && jobs[order[next_arrival]].arrival_s == t) {
      const size_t j = order[next_arrival++];
      state[j].remaining_s = jobs[j].work_s;
      make_unit(j, t);
      pending.push_back(j);
    }
    while (!deferred.empty() && deferred.top().at_s == t) {
      pending.push_back(deferred.top().job);
      deferred.pop();
    }
    if (pending.empty()) continue;

    // One scheduling pass over the ready units, in the policy's order.
    batch.clear();
    job_of.clear();
    for (size_t j : pending) {
      batch.push_back(&state[j].unit);
      job_of[&state[j].unit] = j;
    }
    shares.clear();
    for (const auto& [tenant, us] : usage) shares[tenant] = weighted_share(tenant, us);
    policy.order().sort(batch, shares);
    std::vector<size_t> still;
    for (const WorkUnit* u : batch) {
      const size_t j = job_of[u];
      Decision d = policy.place(*u, nodes, t);
      if (d.kind == Decision::Kind::kPlace) {
        apply(j, d.placement, t);
        if (policy.order().name() == "drf")  // shares move with every placement
          shares[u->tenant] = weighted_share(u->tenant, usage[u->tenant]);
      } else if (d.kind == Decision::Kind::kDefer) {
        deferred.push({d.retry_at_s, j});
        ++r.deferrals;
      } else {
        if (running.empty() && deferred.empty() && next_arrival == order.size())
          return Status::failed_precondition("job " + jobs[j].id + " fits no node: " + d.reason);
        still.push_back(j);
      }
    }
    pending.swap(still);
  }

  // Figures.
  std::vector<double> jct;
  jct.reserve(jobs.size());
  double sum_jct = 0, sum_queue = 0;
  int64_t last_finish = first_arrival;
  std::map<std::string, TenantFigures>& per_tenant = r.tenants;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const JobState& s = state[j];
    const double c = static_cast<double>(s.finish_s - jobs[j].arrival_s);
    jct.push_back(c);
    const double queue = std::max(0.0, c - s.ran_s);
    sum_jct += c;
    sum_queue += queue;
    last_finish = std::max(last_finish, s.finish_s);
    if (s.finish_s > jobs[j].deadline_s) ++r.deadline_misses;
    TenantFigures& t = per_tenant[jobs[j].tenant];  // sums here, means below
    t.avg_jct_s += c;
    t.avg_queue_s += queue;
    t.mean_speed += c > 0 ? std::min(1.0, jobs[j].work_s / c) : 1.0;
    t.jobs += 1;
  }
  std::sort(jct.begin(), jct.end());
  const double n = static_cast<double>(jobs.size());
  r.avg_jct_s = sum_jct / n;
  r.p95_jct_s = jct[static_cast<size_t>(std::ceil(0.95 * n)) - 1];
  r.avg_queue_s = sum_queue / n;
  r.makespan_s = static_cast<double>(last_finish - first_arrival);
  r.energy_kwh = energy_j / 3.6e6;
  r.carbon_kg = carbon_g / 1000.0;
  r.gpu_utilisation = total_dev > 0 && r.makespan_s > 0 ? share_s / (total_dev * r.makespan_s) : 0;
  std::vector<double> x;
  for (auto& [tenant, t] : per_tenant) {
    const double k = static_cast<double>(t.jobs);
    t.avg_jct_s /= k;
    t.avg_queue_s /= k;
    t.mean_speed /= k;
    x.push_back(t.mean_speed);
  }
  r.jain = jain_index(x);
  for (const Node& node : nodes)
    if (node.profile != nullptr)
      r.idle_floor_kwh += node.profile->idle_watts * static_cast<double>(node.devices.size()) * r.makespan_s / 3.6e6;
  for (const auto& [profile, secs] : on_s_by_profile) r.device_hours_by_model[profile->model] += secs / 3600.0;
  return r;
}

}  // namespace mufl::scheduler
