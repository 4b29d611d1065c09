#pragma once
// Placement: which device (and, where it has one, which power limit) runs the next work unit,
// or why the unit waits. A framework of filter and score plugins after the Kubernetes
// scheduling framework, shared by the live scheduler and the simulator (mufl-sim).
//
// One decision (Policy::place) runs one cycle for one unit:
//   1. Filter, per node: a filter says whether the unit fits the node; a refusal carries a
//      reason, kept per node (Decision::rejections) so the caller can say why a unit waits.
//   2. Candidates: each node that passed gives one or more candidates (node, devices, power
//      limit). Filter::filter_candidate may refuse single candidates (a limit too slow for the
//      deadline). A filter marked soft is dropped when it would leave no candidate at all
//      (better late than never).
//   3. Score: each score plugin rates every candidate; the raw values are normalised to the
//      fixed range [0, 100] over the cycle's candidates (min → 0, max → 100, all equal → 100),
//      weighted and summed. The highest total wins; ties go to the earlier candidate (lower node
//      index, a device already in use before a fresh one, the higher limit before a lower one).
//   4. Deferral (optional, `carbon`): the policy may hold the unit, if it has slack at the pace
//      of the winning candidate, until a later time; the caller asks again then.
//
// Plugins keep no state between cycles: what one stage computes for the next lives in the
// PlacementState of that cycle. Time is passed in (seconds on the caller's clock: unix seconds
// live, trace seconds in the simulator); nothing here reads a clock, a file or a database, takes
// a lock or starts a thread.
//
// Thread safety: a Policy is immutable after make_policy(); place() is const and may run on
// several threads at once, each with its own node list.
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "scheduler/energy/power_profile.h"

namespace mufl::scheduler {

class CarbonIntensity;

constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();

// What is to be placed: one work unit (an FL round of a group live; a pod, or a slice of one,
// in the simulator).
struct WorkUnit {
  std::string id;      // for messages
  std::string tenant;  // whose; the `fair` order groups by it
  int64_t ready_s = 0;                // when it became ready to run
  int64_t deadline_s = kNoDeadline;   // when its job (activity) must be done
  // Seconds the unit takes on a reference device (relative_speed 1) at its highest limit.
  double work_s = 0;
  // work_s of this unit plus every later unit of the same job (>= work_s): what must still
  // run before deadline_s.
  double remaining_work_s = 0;
  int devices = 1;            // whole devices needed on one node; 0 = host resources only
  double device_share = 1;    // share of one device when devices == 1, in (0, 1]
  double cpu_milli = 0;       // host CPU it holds while it runs
  double memory_mib = 0;      // host memory it holds while it runs
  bool deferrable = true;     // may be held back by a deferral rule (within its deadline)
  // Higher goes first within an order's rank (the same ready time, the same dominant share).
  // Live: the highest spec priority of the group's members; 0 in the simulator.
  int64_t priority = 0;
  // Must run on a node of the service's own host: it keeps state there between units (a
  // FedEMA group's client models, fl/client_states.h). False in the simulator.
  bool host_local = false;
};

// One device of a node as placement sees it.
struct DeviceLoad {
  double used_share = 0;   // sum of the device_share of the units on it, [0, 1]
  int units = 0;           // units running on it
  double limit_watts = 0;  // power limit in force while units > 0 (set by the first unit)
};

// A node: devices of one model plus host resources. `profile` is not owned and must outlive
// every place() call that sees the node.
struct Node {
  std::string name;
  const PowerProfile* profile = nullptr;
  std::vector<DeviceLoad> devices;
  double cpu_milli_free = 0;
  double memory_mib_free = 0;
  bool remote = false;  // on another host (a Slurm cluster's node): refuses host_local units
};

// One way to run the unit.
struct Candidate {
  size_t node = 0;             // index into the node list
  std::vector<int> devices;    // device indices on that node (empty for host-only units)
  double limit_watts = 0;      // power limit the devices run at (0 for host-only units)
  bool shares_device = false;  // lands on a device that already runs something (its limit)
  double run_s = 0;            // predicted run time of the unit there
  double finish_s = 0;         // predicted finish of the whole job if it kept this pace
};

// Per-decision scratch shared by the plugins of one cycle (CycleState).
struct PlacementState {
  int64_t now_s = 0;
  double max_power_watts = 0;  // largest max_limit_watts among the nodes (Zeus's MAXPOWER)
};

// Seconds `unit` runs on `profile` at `limit_watts`: work / relative_speed · relative_time.
double run_seconds(const WorkUnit& unit, const PowerProfile& profile, double limit_watts);

class Filter {
 public:
  virtual ~Filter() = default;
  virtual std::string_view name() const = 0;
  // nullptr when `unit` fits `node`, else a static reason ("insufficient gpu"). Reads only
  // the node it is given.
  virtual const char* filter(const PlacementState& state, const WorkUnit& unit, const Node& node) const = 0;
  // Same for one candidate on a node that passed filter(); default: accept.
  virtual const char* filter_candidate(const PlacementState&, const WorkUnit&, const Node&,
                                       const Candidate&) const {
    return nullptr;
  }
};

class Score {
 public:
  virtual ~Score() = default;
  virtual std::string_view name() const = 0;
  // Raw score of a candidate, higher is better, any finite range (normalised by the framework).
  virtual double score(const PlacementState& state, const WorkUnit& unit, const std::vector<Node>& nodes,
                       const Candidate& candidate) const = 0;
};

// Maps raw scores to [0, 100] in place: min → 0, max → 100, all equal → all 100.
void normalise_scores(std::vector<double>& scores);

// The order in which a pass tries waiting units.
class QueueOrder {
 public:
  virtual ~QueueOrder() = default;
  virtual std::string_view name() const = 0;
  // Sorts `units` in place, first to try first. `dominant_share` maps tenant → its current
  // dominant share divided by its weight (absent = 0); orders that ignore tenants ignore it.
  virtual void sort(std::vector<const WorkUnit*>& units,
                    const std::unordered_map<std::string, double>& dominant_share) const = 0;
};

// A rule that holds deferrable units back.
class Deferral {
 public:
  virtual ~Deferral() = default;
  virtual std::string_view name() const = 0;
  // A time > state.now_s until which `unit` should wait, or 0 to place it now. Never holds a
  // unit whose deadline leaves no slack. Policy::place passes the unit with work_s and
  // remaining_work_s at the pace of the candidate it chose (seconds on that device and limit).
  virtual int64_t defer_until(const PlacementState& state, const WorkUnit& unit) const = 0;
};

// Why a node refused a unit.
struct Rejection {
  size_t node = 0;
  std::string_view plugin;
  std::string_view reason;
};

struct Decision {
  enum class Kind { kPlace, kWait, kDefer };
  Kind kind = Kind::kWait;
  Candidate placement;               // kPlace
  int64_t retry_at_s = 0;            // kDefer: ask again at this time
  std::vector<Rejection> rejections; // kWait: one per refusing node (first refusing filter)
  std::string reason;                // kWait / kDefer: a one-line summary for people
};

// A named list of plugins with its ordering and deferral rule.
class Policy {
 public:
  struct FilterEntry {
    std::unique_ptr<Filter> plugin;
    bool soft = false;  // dropped when it would refuse every candidate
  };
  struct ScoreEntry {
    std::unique_ptr<Score> plugin;
    double weight = 1;
  };

  Policy(std::string name, std::unique_ptr<QueueOrder> order);
  Policy(Policy&&) = default;
  Policy& operator=(Policy&&) = default;

  Policy& add_filter(std::unique_ptr<Filter> f, bool soft = false);
  Policy& add_score(std::unique_ptr<Score> s, double weight = 1);
  Policy& set_deferral(std::unique_ptr<Deferral> d);
  // When true, a fresh device is offered at every power limit of its profile; else only at
  // its highest. Default false.
  Policy& set_choose_power_limit(bool on);

  const std::string& name() const { return name_; }
  const QueueOrder& order() const { return *order_; }
  const std::vector<FilterEntry>& filters() const { return filters_; }
  const std::vector<ScoreEntry>& scores() const { return scores_; }

  // One placement cycle for `unit` at `now_s` over `nodes` (read only). kPlace with the chosen
  // candidate; kDefer with retry_at_s when the deferral rule holds the unit at the chosen
  // candidate's pace (only if unit.deferrable); kWait with a rejection per node when nothing
  // fits (then nothing is deferred). Never fails otherwise.
  Decision place(const WorkUnit& unit, const std::vector<Node>& nodes, int64_t now_s) const;

 private:
  void candidates_on(const WorkUnit& unit, const std::vector<Node>& nodes, size_t index,
                     const PlacementState& state, std::vector<Candidate>& out) const;

  std::string name_;
  std::unique_ptr<QueueOrder> order_;
  std::vector<FilterEntry> filters_;
  std::vector<ScoreEntry> scores_;
  std::unique_ptr<Deferral> deferral_;
  bool choose_power_limit_ = false;
};

struct PolicyOptions {
  // energy: weight of energy against time in Zeus's cost η·E + (1−η)·MAXPOWER·T. Default 0.9
  // (docs/simulator.md: Zeus's 0.5 saves about 1 % on the trace, 0.8 and above about 15–18 %).
  double eta = 0.9;
  // energy: choose the device by cost too (true, default), or take fifo's first-fit node and
  // choose only the power limit there (false; isolates what the power limits save).
  bool energy_device_choice = true;
  // carbon: the hourly intensity to defer by. Not owned; required for `carbon`.
  const CarbonIntensity* carbon = nullptr;
  // carbon: time origin of the caller's clock in the intensity series: a unit at time t sees
  // carbon->at(carbon_origin_unix_s + t). 0 when the caller's clock is unix time (live).
  int64_t carbon_origin_unix_s = 0;
  // carbon: how far ahead (hours) the rule looks for cleaner hours. Default 48.
  int carbon_window_hours = 48;
};

// The policies mufl ships; docs/simulator.md defines each. Every one also has the HostLocal
// filter after ResourceFit (a host_local unit refuses remote nodes), a no-op in the simulator.
//   fifo   : ready order (priority first, then ready time); ResourceFit; FirstFit (lowest node
//            index).
//   fair   : weighted dominant-resource-fairness order (lowest dominant share first, then
//            priority, then ready time); ResourceFit; FirstFit.
//   energy : ready order; ResourceFit, DeadlineFit (soft); ZeusCost; every power limit.
//   carbon : ready order; CarbonDeferral; ResourceFit, DeadlineFit (soft); CarbonCost (the
//            unit's energy times the mean intensity over its run if it starts now); every
//            power limit.
// kInvalidArgument for an unknown name, eta outside [0, 1], or `carbon` without an intensity.
Result<Policy> make_policy(std::string_view name, const PolicyOptions& options = {});

// "fifo", "fair", "energy", "carbon".
const std::vector<std::string>& policy_names();

// Plugins, for tests and for callers that compose their own policies.
std::unique_ptr<Filter> make_resource_fit();
std::unique_ptr<Filter> make_deadline_fit();
std::unique_ptr<Filter> make_host_local();
std::unique_ptr<Score> make_first_fit();
std::unique_ptr<Score> make_zeus_cost(double eta);
std::unique_ptr<Score> make_carbon_cost(const CarbonIntensity* carbon, int64_t origin_unix_s);
std::unique_ptr<QueueOrder> make_ready_order();
std::unique_ptr<QueueOrder> make_drf_order();
std::unique_ptr<Deferral> make_carbon_deferral(const CarbonIntensity* carbon, int64_t origin_unix_s,
                                               int window_hours);

}  // namespace mufl::scheduler
