#include "scheduler/placement/placement.h"

#include <algorithm>
#include <cmath>

#include "scheduler/energy/carbon_intensity.h"

namespace mufl::scheduler {
namespace {

constexpr double kShareEpsilon = 1e-9;
constexpr int64_t kHour = 3600;

// --- Filters ---------------------------------------------------------------------------------

// Host CPU and memory, and the devices: a share of one device that has room, or that many idle
// devices on the node.
class ResourceFit final : public Filter {
 public:
  std::string_view name() const override { return "ResourceFit"; }
  const char* filter(const PlacementState&, const WorkUnit& unit, const Node& node) const override {
    if (unit.cpu_milli > node.cpu_milli_free + kShareEpsilon) return "insufficient cpu";
    if (unit.memory_mib > node.memory_mib_free + kShareEpsilon) return "insufficient memory";
    if (unit.devices == 0) return nullptr;
    if (node.profile == nullptr || node.devices.empty()) return "no devices";
    if (unit.devices == 1 && unit.device_share < 1) {
      for (const DeviceLoad& d : node.devices)
        if (d.used_share + unit.device_share <= 1 + kShareEpsilon) return nullptr;
      return "no device with a free share";
    }
    int idle = 0;
    for (const DeviceLoad& d : node.devices) idle += d.units == 0 ? 1 : 0;
    if (idle < unit.devices) return idle == 0 ? "no idle device" : "too few idle devices";
    return nullptr;
  }
};

// The job's predicted finish at this candidate's pace must not pass its deadline.
class DeadlineFit final : public Filter {
 public:
  std::string_view name() const override { return "DeadlineFit"; }
  const char* filter(const PlacementState&, const WorkUnit&, const Node&) const override { return nullptr; }
  const char* filter_candidate(const PlacementState&, const WorkUnit& unit, const Node&,
                               const Candidate& c) const override {
    if (unit.deadline_s == kNoDeadline) return nullptr;
    return c.finish_s > static_cast<double>(unit.deadline_s) ? "would miss the deadline" : nullptr;
  }
};

// A unit that keeps state on the service's host runs only there.
class HostLocal final : public Filter {
 public:
  std::string_view name() const override { return "HostLocal"; }
  const char* filter(const PlacementState&, const WorkUnit& unit, const Node& node) const override {
    return unit.host_local && node.remote ? "keeps client state on the service's host" : nullptr;
  }
};

// --- Scores ----------------------------------------------------------------------------------

// The lowest node index wins: first fit in the node list's order.
class FirstFit final : public Score {
 public:
  std::string_view name() const override { return "FirstFit"; }
  double score(const PlacementState&, const WorkUnit&, const std::vector<Node>&, const Candidate& c) const override {
    return -static_cast<double>(c.node);
  }
};

// Watts the unit adds on a candidate: the device's idle power counts only when the unit powers
// a fresh device up (on a shared device the idle draw is already paid).
double unit_watts(const WorkUnit& unit, const std::vector<Node>& nodes, const Candidate& c) {
  if (unit.devices == 0) return 0;
  const PowerProfile& p = *nodes[c.node].profile;
  const double busy = p.busy_watts_at(c.limit_watts);
  if (unit.devices == 1 && unit.device_share < 1)
    return c.shares_device ? unit.device_share * (busy - p.idle_watts) : p.watts_at(unit.device_share, c.limit_watts);
  return unit.devices * busy;
}

// Zeus (NSDI'23): cost = η·E + (1−η)·MAXPOWER·T for the unit on this candidate, E from
// unit_watts; MAXPOWER is scaled by the devices (or share) the unit holds.
class ZeusCost final : public Score {
 public:
  explicit ZeusCost(double eta) : eta_(eta) {}
  std::string_view name() const override { return "ZeusCost"; }
  double score(const PlacementState& state, const WorkUnit& unit, const std::vector<Node>& nodes,
               const Candidate& c) const override {
    if (unit.devices == 0) return 0;
    const double held = unit.devices == 1 ? unit.device_share : static_cast<double>(unit.devices);
    const double energy = unit_watts(unit, nodes, c) * c.run_s;
    return -(eta_ * energy + (1 - eta_) * state.max_power_watts * held * c.run_s);
  }

 private:
  double eta_;
};

// Emissions of the unit if it starts now on this candidate: E · mean intensity over its run.
class CarbonCost final : public Score {
 public:
  CarbonCost(const CarbonIntensity* carbon, int64_t origin) : carbon_(carbon), origin_(origin) {}
  std::string_view name() const override { return "CarbonCost"; }
  double score(const PlacementState& state, const WorkUnit& unit, const std::vector<Node>& nodes,
               const Candidate& c) const override {
    if (unit.devices == 0) return 0;
    const int64_t from = origin_ + state.now_s;
    const int64_t to = from + std::max<int64_t>(1, static_cast<int64_t>(std::ceil(c.run_s)));
    return -unit_watts(unit, nodes, c) * c.run_s * carbon_->mean_over(from, to);
  }

 private:
  const CarbonIntensity* carbon_;
  int64_t origin_;
};

// --- Orders ----------------------------------------------------------------------------------

// Highest priority first (all 0 in the simulator), then ready time.
class ReadyOrder final : public QueueOrder {
 public:
  std::string_view name() const override { return "ready"; }
  void sort(std::vector<const WorkUnit*>& units, const std::unordered_map<std::string, double>&) const override {
    std::stable_sort(units.begin(), units.end(), [](const WorkUnit* a, const WorkUnit* b) {
      if (a->priority != b->priority) return a->priority > b->priority;
      return a->ready_s < b->ready_s;
    });
  }
};

// Weighted dominant resource fairness (Ghodsi et al., NSDI'11): the tenant with the lowest
// dominant share (over its weight) goes first; then priority, then ready time.
class DrfOrder final : public QueueOrder {
 public:
  std::string_view name() const override { return "drf"; }
  void sort(std::vector<const WorkUnit*>& units,
            const std::unordered_map<std::string, double>& share) const override {
    auto of = [&](const WorkUnit* u) {
      auto it = share.find(u->tenant);
      return it == share.end() ? 0.0 : it->second;
    };
    std::stable_sort(units.begin(), units.end(), [&](const WorkUnit* a, const WorkUnit* b) {
      const double sa = of(a), sb = of(b);
      if (sa != sb) return sa < sb;
      if (a->priority != b->priority) return a->priority > b->priority;
      return a->ready_s < b->ready_s;
    });
  }
};

// --- Deferral --------------------------------------------------------------------------------

// Holds deferrable units in hours of high carbon intensity while their slack allows.
// slack = deadline − now − remaining work, the unit's work being at the pace of the device
// Policy::place chose for it (not the reference device's). With no slack it never holds.
// The last (or only) unit of a job starts at the hour, within min(slack, window), whose mean
// intensity over the unit's run is lowest (now when nothing is lower). A unit with more units of
// its job after it keeps pace: it runs now when this hour is among the cleanest fraction
// f = remaining / (remaining + slack) of the hours in the window, else waits for the next hour.
class CarbonDeferral final : public Deferral {
 public:
  CarbonDeferral(const CarbonIntensity* carbon, int64_t origin, int window_hours)
      : carbon_(carbon), origin_(origin), window_s_(static_cast<int64_t>(window_hours) * kHour) {}
  std::string_view name() const override { return "CarbonDeferral"; }

  int64_t defer_until(const PlacementState& state, const WorkUnit& unit) const override {
    const int64_t now = state.now_s;
    const double remaining = std::max(unit.remaining_work_s, unit.work_s);
    double slack = unit.deadline_s == kNoDeadline
                       ? static_cast<double>(window_s_)
                       : static_cast<double>(unit.deadline_s - now) - remaining;
    if (slack < 1) return 0;
    const int64_t horizon = std::min<int64_t>(static_cast<int64_t>(slack), window_s_);
    const int64_t abs_now = origin_ + now;
    // First hour boundary after now, on the intensity series' hour grid.
    const int64_t next_hour = now + (kHour - ((abs_now - carbon_->first_hour()) % kHour + kHour) % kHour);
    const int64_t run = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(unit.work_s)));
    if (remaining <= unit.work_s + 0.5) {
      double best = carbon_->mean_over(abs_now, abs_now + run);
      int64_t best_s = now;
      for (int64_t s = next_hour; s <= now + horizon; s += kHour) {
        const double v = carbon_->mean_over(origin_ + s, origin_ + s + run);
        if (v < best * (1 - 1e-9)) {
          best = v;
          best_s = s;
        }
      }
      return best_s > now ? best_s : 0;
    }
    std::vector<double> hours;
    hours.push_back(carbon_->at(abs_now));
    for (int64_t s = next_hour; s < now + horizon; s += kHour) hours.push_back(carbon_->at(origin_ + s));
    const double f = remaining / (remaining + slack);
    size_t k = static_cast<size_t>(std::ceil(f * static_cast<double>(hours.size())));
    k = std::clamp<size_t>(k, 1, hours.size()) - 1;
    const double here = hours.front();
    std::nth_element(hours.begin(), hours.begin() + static_cast<std::ptrdiff_t>(k), hours.end());
    return here <= hours[k] ? 0 : next_hour;
  }

 private:
  const CarbonIntensity* carbon_;
  int64_t origin_;
  int64_t window_s_;
};

}  // namespace

double run_seconds(const WorkUnit& unit, const PowerProfile& profile, double limit_watts) {
  if (unit.devices == 0) return unit.work_s;
  return unit.work_s / profile.relative_speed * profile.relative_time_at(limit_watts);
}

void normalise_scores(std::vector<double>& scores) {
  if (scores.empty()) return;
  const auto [lo, hi] = std::minmax_element(scores.begin(), scores.end());
  const double min = *lo, max = *hi;
  for (double& s : scores) s = max > min ? 100.0 * (s - min) / (max - min) : 100.0;
}

Policy::Policy(std::string name, std::unique_ptr<QueueOrder> order) : name_(std::move(name)), order_(std::move(order)) {}

Policy& Policy::add_filter(std::unique_ptr<Filter> f, bool soft) {
  filters_.push_back({std::move(f), soft});
  return *this;
}
Policy& Policy::add_score(std::unique_ptr<Score> s, double weight) {
  scores_.push_back({std::move(s), weight});
  return *this;
}
Policy& Policy::set_deferral(std::unique_ptr<Deferral> d) {
  deferral_ = std::move(d);
  return *this;
}
Policy& Policy::set_choose_power_limit(bool on) {
  choose_power_limit_ = on;
  return *this;
}

void Policy::candidates_on(const WorkUnit& unit, const std::vector<Node>& nodes, size_t index,
                           const PlacementState& state, std::vector<Candidate>& out) const {
  const Node& node = nodes[index];
  const double now = static_cast<double>(state.now_s);
  const double remaining = std::max(unit.remaining_work_s, unit.work_s);
  if (unit.devices == 0) {
    Candidate c;
    c.node = index;
    c.run_s = unit.work_s;
    c.finish_s = now + remaining;
    out.push_back(std::move(c));
    return;
  }
  const PowerProfile& p = *node.profile;
  auto pace = [&](Candidate& c) {
    c.run_s = run_seconds(unit, p, c.limit_watts);
    c.finish_s = now + remaining / p.relative_speed * p.relative_time_at(c.limit_watts);
  };
  std::vector<int> fresh;
  if (unit.devices == 1 && unit.device_share < 1) {
    // Best fit among devices already in use (packs shares), at the limit in force there.
    int best = -1;
    for (size_t i = 0; i < node.devices.size(); ++i) {
      const DeviceLoad& d = node.devices[i];
      if (d.units > 0 && d.used_share + unit.device_share <= 1 + kShareEpsilon &&
          (best < 0 || d.used_share > node.devices[static_cast<size_t>(best)].used_share))
        best = static_cast<int>(i);
    }
    if (best >= 0) {
      Candidate c;
      c.node = index;
      c.devices = {best};
      c.limit_watts = node.devices[static_cast<size_t>(best)].limit_watts;
      c.shares_device = true;
      pace(c);
      out.push_back(std::move(c));
    }
    for (size_t i = 0; i < node.devices.size() && fresh.empty(); ++i)
      if (node.devices[i].units == 0) fresh.push_back(static_cast<int>(i));
  } else {
    for (size_t i = 0; i < node.devices.size() && static_cast<int>(fresh.size()) < unit.devices; ++i)
      if (node.devices[i].units == 0) fresh.push_back(static_cast<int>(i));
    if (static_cast<int>(fresh.size()) < unit.devices) return;
  }
  if (fresh.empty()) return;
  const size_t n = choose_power_limit_ ? p.points.size() : 1;
  for (size_t k = 0; k < n; ++k) {  // highest limit first
    Candidate c;
    c.node = index;
    c.devices = fresh;
    c.limit_watts = p.points[p.points.size() - 1 - k].limit_watts;
    pace(c);
    out.push_back(std::move(c));
  }
}

Decision Policy::place(const WorkUnit& unit, const std::vector<Node>& nodes, int64_t now_s) const {
  PlacementState state;
  state.now_s = now_s;
  for (const Node& n : nodes)
    if (n.profile != nullptr && !n.devices.empty())
      state.max_power_watts = std::max(state.max_power_watts, n.profile->max_limit_watts());

  Decision d;
  std::vector<Candidate> candidates;
  std::vector<char> soft_failed;  // per candidate: refused only by soft filters
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& node = nodes[i];
    bool hard_fail = false, soft_fail = false;
    for (const FilterEntry& f : filters_) {
      const char* why = f.plugin->filter(state, unit, node);
      if (why == nullptr) continue;
      if (!f.soft) {
        d.rejections.push_back({i, f.plugin->name(), why});
        hard_fail = true;
        break;
      }
      soft_fail = true;
    }
    if (hard_fail) continue;
    const size_t first = candidates.size();
    candidates_on(unit, nodes, i, state, candidates);
    for (size_t c = first; c < candidates.size(); ++c) {
      bool refused = false, soft = soft_fail;
      for (const FilterEntry& f : filters_) {
        if (f.plugin->filter_candidate(state, unit, node, candidates[c]) == nullptr) continue;
        if (f.soft) {
          soft = true;
        } else {
          refused = true;
          break;
        }
      }
      if (refused) {
        candidates.erase(candidates.begin() + static_cast<std::ptrdiff_t>(c));
        --c;
        continue;
      }
      soft_failed.push_back(soft ? 1 : 0);
    }
    if (candidates.size() == first) d.rejections.push_back({i, "candidates", "no candidate passed"});
  }
  // Keep the candidates that pass every filter; if none does, those refused only by soft ones.
  if (std::find(soft_failed.begin(), soft_failed.end(), 0) != soft_failed.end()) {
    size_t w = 0;
    for (size_t c = 0; c < candidates.size(); ++c)
      if (!soft_failed[c]) {
        if (w != c) candidates[w] = std::move(candidates[c]);
        ++w;
      }
    candidates.resize(w);
  }
  if (candidates.empty()) {
    d.kind = Decision::Kind::kWait;
    d.reason = "no node fits: " + std::to_string(d.rejections.size()) + " of " + std::to_string(nodes.size()) +
               " nodes refused";
    if (!d.rejections.empty())
      d.reason += " (first: " + nodes[d.rejections.front().node].name + ", " +
                  std::string(d.rejections.front().plugin) + ": " + std::string(d.rejections.front().reason) + ")";
    return d;
  }
  std::vector<double> total(candidates.size(), 0.0), raw(candidates.size());
  for (const ScoreEntry& s : scores_) {
    for (size_t c = 0; c < candidates.size(); ++c) raw[c] = s.plugin->score(state, unit, nodes, candidates[c]);
    normalise_scores(raw);
    for (size_t c = 0; c < candidates.size(); ++c) total[c] += s.weight * raw[c];
  }
  size_t best = 0;
  for (size_t c = 1; c < candidates.size(); ++c)
    if (total[c] > total[best]) best = c;
  if (deferral_ != nullptr && unit.deferrable) {
    // The slack the deferral rule may spend is at the pace of the device the unit would take
    // now, not the reference device's: a slow GPU has less of it, a fast one more.
    WorkUnit paced = unit;
    paced.work_s = candidates[best].run_s;
    paced.remaining_work_s = std::max(paced.work_s, candidates[best].finish_s - static_cast<double>(now_s));
    const int64_t until = deferral_->defer_until(state, paced);
    if (until > now_s) {
      d.kind = Decision::Kind::kDefer;
      d.retry_at_s = until;
      d.reason = std::string(deferral_->name()) + ": held until " + std::to_string(until);
      d.rejections.clear();
      return d;
    }
  }
  d.kind = Decision::Kind::kPlace;
  d.placement = std::move(candidates[best]);
  d.rejections.clear();
  return d;
}

const std::vector<std::string>& policy_names() {
  static const std::vector<std::string> names = {"fifo", "fair", "energy", "carbon"};
  return names;
}

std::unique_ptr<Filter> make_resource_fit() { return std::make_unique<ResourceFit>(); }
std::unique_ptr<Filter> make_deadline_fit() { return std::make_unique<DeadlineFit>(); }
std::unique_ptr<Filter> make_host_local() { return std::make_unique<HostLocal>(); }
std::unique_ptr<Score> make_first_fit() { return std::make_unique<FirstFit>(); }
std::unique_ptr<Score> make_zeus_cost(double eta) { return std::make_unique<ZeusCost>(eta); }
std::unique_ptr<Score> make_carbon_cost(const CarbonIntensity* carbon, int64_t origin_unix_s) {
  return std::make_unique<CarbonCost>(carbon, origin_unix_s);
}
std::unique_ptr<QueueOrder> make_ready_order() { return std::make_unique<ReadyOrder>(); }
std::unique_ptr<QueueOrder> make_drf_order() { return std::make_unique<DrfOrder>(); }
std::unique_ptr<Deferral> make_carbon_deferral(const CarbonIntensity* carbon, int64_t origin_unix_s,
                                               int window_hours) {
  return std::make_unique<CarbonDeferral>(carbon, origin_unix_s, window_hours);
}

namespace {

// What every policy checks first: the unit fits the node (ResourceFit), and a unit that keeps
// state on this host stays on it (HostLocal).
Policy& with_hard_filters(Policy& p) { return p.add_filter(make_resource_fit()).add_filter(make_host_local()); }

}  // namespace

Result<Policy> make_policy(std::string_view name, const PolicyOptions& o) {
  if (name == "fifo") {
    Policy p("fifo", make_ready_order());
    with_hard_filters(p).add_score(make_first_fit());
    return p;
  }
  if (name == "fair") {
    Policy p("fair", make_drf_order());
    with_hard_filters(p).add_score(make_first_fit());
    return p;
  }
  if (name == "energy") {
    if (!(o.eta >= 0 && o.eta <= 1))
      return Status::invalid_argument("eta must be in [0, 1]", {{"eta", "must be in [0, 1]"}});
    Policy p("energy", make_ready_order());
    with_hard_filters(p).add_filter(make_deadline_fit(), /*soft=*/true);
    p.add_score(make_zeus_cost(o.eta), 1);
    // First fit with a weight no cost difference (at most 100) can outvote: the node is fifo's.
    if (!o.energy_device_choice) p.add_score(make_first_fit(), 1e6);
    p.set_choose_power_limit(true);
    return p;
  }
  if (name == "carbon") {
    if (o.carbon == nullptr)
      return Status::invalid_argument("the carbon policy needs a carbon-intensity series",
                                      {{"carbon", "required for policy carbon"}});
    if (o.carbon_window_hours < 1)
      return Status::invalid_argument("carbon_window_hours must be at least 1",
                                      {{"carbon_window_hours", "must be >= 1"}});
    Policy p("carbon", make_ready_order());
    p.set_deferral(make_carbon_deferral(o.carbon, o.carbon_origin_unix_s, o.carbon_window_hours));
    with_hard_filters(p).add_filter(make_deadline_fit(), /*soft=*/true);
    p.add_score(make_carbon_cost(o.carbon, o.carbon_origin_unix_s));
    p.set_choose_power_limit(true);
    return p;
  }
  return Status::invalid_argument("unknown policy '" + std::string(name) + "' (fifo, fair, energy, carbon)",
                                  {{"policy", "unknown"}});
}

}  // namespace mufl::scheduler
