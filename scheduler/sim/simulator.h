#pragma once
// Trace-driven discrete-event replay of jobs on a simulated cluster, through the same
// placement code (scheduler/placement/placement.h) the live scheduler uses. mufl-sim is its command
// line; docs/simulator.md states every assumption.
//
// Model, in brief: a job arrives, is cut into work units (one unit, or units of at most
// SimOptions::unit_seconds of reference work each, run one after another), and each unit is
// placed by the policy when it is ready. A unit on a device of relative_speed s at power limit L
// runs work / s · relative_time(L) seconds (whole seconds, rounded up). A device draws power
// only while it holds at least one unit: idle + used_share · (busy(L) − idle) (PowerProfile::
// watts_at); a device that holds nothing is taken as powered off. Host-only units draw nothing
// that is counted. Carbon is each device's energy times the mean grid intensity over the same
// span.
//
// Thread safety: simulate() keeps all its state on its stack; separate calls may run at once.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "scheduler/energy/carbon_intensity.h"
#include "scheduler/placement/placement.h"
#include "scheduler/sim/cluster_trace.h"

namespace mufl::scheduler {

// One job to replay.
struct SimJob {
  std::string id;
  std::string tenant;
  int64_t arrival_s = 0;
  double work_s = 1;          // run time on a reference device (relative_speed 1) at full limit
  int devices = 1;            // whole devices on one node; 0 = host only
  double device_share = 1;    // share of one device when devices == 1
  double cpu_milli = 0;
  double memory_mib = 0;
  bool deferrable = true;
  int64_t deadline_s = kNoDeadline;
};

struct SimOptions {
  // Deadline of a job = arrival + slack_factor × work_s. Default 2 (slack of one duration).
  double slack_factor = 2.0;
  // 0 (default): a job is one unit, run without interruption. > 0: a job is cut into units of
  // at most this many seconds of reference work, each placed on its own (checkpointed between
  // units at no cost), as mufl's FL rounds are.
  double unit_seconds = 0;
  // Which trace pods may be deferred: all of them (default), or only the best-effort QoS
  // classes (BE and Burstable; LS and Guaranteed pods are latency-sensitive and never held).
  bool defer_best_effort_only = false;
  // Unix time of trace second 0 in the carbon series (carbon.at(origin + t)).
  int64_t carbon_origin_unix_s = 0;
  // The `fair` order's weight per tenant (a tenant's dominant share is divided by it); a tenant
  // not listed weighs 1. Weights must be > 0.
  std::map<std::string, double> tenant_weights;
};

// One tenant's jobs in a replay.
struct TenantFigures {
  size_t jobs = 0;
  double avg_jct_s = 0;
  double avg_queue_s = 0;
  double mean_speed = 0;  // mean of min(1, work_s / JCT): what Jain's index is taken over
};

struct SimResult {
  std::string policy;
  size_t jobs = 0;
  double avg_jct_s = 0;        // job completion time: finish − arrival
  double p95_jct_s = 0;        // nearest-rank 95th percentile
  double avg_queue_s = 0;      // JCT − time the job's units ran (waiting, deferral)
  double makespan_s = 0;       // last finish − first arrival
  double gpu_utilisation = 0;  // device-share-seconds used / (devices × makespan)
  double energy_kwh = 0;       // devices that held a unit (see the model above)
  double carbon_kg = 0;        // kg CO2e of that energy
  double jain = 0;             // Jain's index over tenants of mean min(1, work_s / JCT)
  size_t deadline_misses = 0;  // jobs that finished after their deadline
  size_t units = 0;            // work units placed
  size_t deferrals = 0;        // times a unit was held by the deferral rule
  double idle_floor_kwh = 0;   // every device idle for the makespan: context, not in energy_kwh
  std::map<std::string, double> device_hours_by_model;  // powered-on device-hours per model
  std::map<std::string, TenantFigures> tenants;          // per tenant (SimJob::tenant)
};

// Jobs from trace pods: tenant = the pod's QoS class; work_s = TracePod::duration_s();
// devices/device_share from num_gpu/gpu_milli; deadline = arrival + slack_factor × work_s;
// deferrable per options. Arrival = creation_time.
std::vector<SimJob> jobs_from_trace(const std::vector<TracePod>& pods, const SimOptions& options);

// Nodes from trace nodes with the built-in profile of each GPU model (find_power_profile).
// kNotFound naming the model when one has no profile.
Result<std::vector<Node>> nodes_from_trace(const std::vector<TraceNode>& trace_nodes);

// The jobs that fit at least one of `nodes` when it runs nothing (ResourceFit on an empty
// node); `dropped` gets how many did not. For replays on a part of a cluster.
std::vector<SimJob> jobs_that_fit(const std::vector<SimJob>& jobs, const std::vector<Node>& nodes, size_t& dropped);

// Divides the time between each job's arrival and the first arrival by `scale` (>= 1; 1
// leaves the jobs as they are), keeping each job's work and its slack (deadline − arrival):
// the same jobs arriving `scale` times as densely. For contention scenarios.
void compress_arrivals(std::vector<SimJob>& jobs, double scale);

// Puts `nodes` in a pseudo-random order fixed by `seed` (Fisher–Yates over mt19937_64, the
// same on every platform). The trace lists its 22 P100 nodes first, so first fit in trace order
// would put most work on the slowest GPUs; in shuffled order first fit takes models in about
// their share of the cluster, the model-agnostic placement the trace's empty gpu_spec implies.
void shuffle_nodes(std::vector<Node>& nodes, uint64_t seed);

// Replays `jobs` on `nodes` with `policy`. kFailedPrecondition when a job can never be placed
// (it fits no node even when the cluster is empty), naming the job and the reasons.
Result<SimResult> simulate(const std::vector<SimJob>& jobs, std::vector<Node> nodes, const Policy& policy,
                           const CarbonIntensity& carbon, const SimOptions& options);

// Jain's fairness index (Σx)² / (n·Σx²) of `x`; 1 for an empty or all-zero list.
double jain_index(const std::vector<double>& x);

}  // namespace mufl::scheduler
