#include "scheduler/placement/dispatch.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/time_format.h"
#include "scheduler/energy/carbon_intensity.h"

namespace mufl::scheduler {
namespace {

constexpr int64_t kHourS = 3600;

std::vector<Node> nodes_of(const std::vector<FreeDevice>& devices) {
  std::vector<Node> nodes;
  nodes.reserve(devices.size());
  for (const FreeDevice& d : devices) {
    Node n;
    n.name = d.name;
    n.profile = d.profile;
    n.remote = d.remote;
    n.devices.assign(1, DeviceLoad{});
    nodes.push_back(std::move(n));
  }
  return nodes;
}

}  // namespace

Result<Dispatcher> Dispatcher::create(const DispatchOptions& o) {
  if (o.carbon_horizon_hours < 1 || o.carbon_horizon_hours > 24 * 365)
    return Status::invalid_argument("the carbon horizon must be from 1 to 8760 hours",
                                    {{"carbon_horizon_hours", "must be from 1 to 8760"}});
  if (!(o.prior_round_seconds > 0))
    return Status::invalid_argument("the prior seconds per round must be above 0",
                                    {{"prior_round_seconds", "must be > 0"}});
  PolicyOptions p;
  p.eta = o.eta;
  p.carbon = o.carbon;
  p.carbon_origin_unix_s = 0;
  p.carbon_window_hours = o.carbon_horizon_hours;
  auto policy = make_policy(o.policy, p);
  if (!policy.ok()) return policy.status();
  return Dispatcher(o, std::move(*policy));
}

WorkUnit Dispatcher::unit_of(const storage::ClaimableGroup& g, const DispatchInput& in,
                             const PowerProfile& profile) const {
  WorkUnit u;
  u.id = g.id;
  u.priority = g.priority;
  u.ready_s = g.created_unix_ms / 1000;
  u.devices = 1;
  u.device_share = 1;
  u.deferrable = true;
  const auto measured = in.round_seconds.find(g.id);
  const double per_round =
      (measured != in.round_seconds.end() && measured->second > 0 ? measured->second : options_.prior_round_seconds) *
      profile.relative_speed;
  u.work_s = per_round;
  u.remaining_work_s = per_round;

  const int64_t now_s = in.now_unix_ms / 1000;
  const auto seen = in.first_seen_ms.find(g.id);
  const int64_t first_seen_s = (seen != in.first_seen_ms.end() ? seen->second : in.now_unix_ms) / 1000;
  std::map<std::string, int> per_tenant;
  double best_slack = 0;
  bool have = false;
  for (const storage::ClaimableMember& m : g.members) {
    ++per_tenant[m.tenant_id];
    u.host_local = u.host_local || m.keeps_client_state;
    const double remaining = static_cast<double>(std::max<int64_t>(1, m.rounds_left)) * per_round;
    const int64_t deadline_s =
        m.deadline_unix_ms ? *m.deadline_unix_ms / 1000
                           : first_seen_s + options_.carbon_horizon_hours * kHourS +
                                 static_cast<int64_t>(std::ceil(remaining));
    const double slack = static_cast<double>(deadline_s - now_s) - remaining;
    if (!have || slack < best_slack) {
      have = true;
      best_slack = slack;
      u.deadline_s = deadline_s;
      u.remaining_work_s = remaining;
    }
  }
  int most = 0;
  for (const storage::ClaimableMember& m : g.members)  // join order: the first of the largest wins
    if (per_tenant[m.tenant_id] > most) {
      most = per_tenant[m.tenant_id];
      u.tenant = m.tenant_id;
    }
  return u;
}

std::string Dispatcher::hold_reason(const WorkUnit& unit, int64_t now_s, int64_t retry_s) const {
  const CarbonIntensity& c = *options_.carbon;
  const double here = c.at(now_s), then = c.at(retry_s);
  std::string when = format_rfc3339(retry_s * 1000);
  char text[256];
  if (then < here)
    std::snprintf(text, sizeof text, "carbon: %.0f g/kWh now, %.0f g/kWh at %s within slack", here, then, when.c_str());
  else
    std::snprintf(text, sizeof text, "carbon: %.0f g/kWh now, cleaner hours later within slack; next look at %s",
                  here, when.c_str());
  std::string out = text;
  if (unit.deadline_s != kNoDeadline) out += " (must start by " + format_rfc3339(
      (unit.deadline_s - static_cast<int64_t>(std::ceil(unit.remaining_work_s))) * 1000) + ")";
  return out;
}

DispatchChoice Dispatcher::choose(const DispatchInput& in) const {
  DispatchChoice out;
  if (in.devices.empty() || in.groups.empty()) return out;
  const int64_t now_s = in.now_unix_ms / 1000;
  const std::vector<Node> nodes = nodes_of(in.devices);
  const PowerProfile& asking = *in.devices.front().profile;

  std::vector<WorkUnit> units;
  units.reserve(in.groups.size());
  for (const storage::ClaimableGroup& g : in.groups) units.push_back(unit_of(g, in, asking));
  std::unordered_map<std::string, double> shares;
  const double total = std::max(1, in.total_devices);
  // Weighted DRF: a tenant's share over its weight (quotas.fair_share_weight, on its members).
  std::unordered_map<std::string, double> weight;
  for (const storage::ClaimableGroup& g : in.groups)
    for (const storage::ClaimableMember& m : g.members)
      if (m.tenant_weight > 0) weight[m.tenant_id] = m.tenant_weight;
  for (const auto& [tenant, held] : in.tenant_devices) {
    const auto w = weight.find(tenant);
    shares[tenant] = held / total / (w == weight.end() ? 1.0 : w->second);
  }
  std::vector<const WorkUnit*> order;
  for (const WorkUnit& u : units) order.push_back(&u);
  policy_.order().sort(order, shares);

  for (const WorkUnit* u : order) {
    out.considered.push_back(u->id);
    Decision d = policy_.place(*u, nodes, now_s);
    switch (d.kind) {
      case Decision::Kind::kPlace:
        if (d.placement.node == 0) {
          out.group_id = u->id;
          out.limit_watts = d.placement.limit_watts;
          return out;
        }
        out.waiting[u->id] = {WaitReason::kBetterDevice,
                              name() + ": left to " + nodes[d.placement.node].name + ", a better fit"};
        out.left_to_other = true;
        break;
      case Decision::Kind::kDefer: {
        ++out.held;
        out.waiting[u->id] = {WaitReason::kCarbon, hold_reason(*u, now_s, d.retry_at_s)};
        const int64_t at_ms = d.retry_at_s * 1000;
        out.retry_at_ms = out.retry_at_ms ? std::min(*out.retry_at_ms, at_ms) : at_ms;
        break;
      }
      case Decision::Kind::kWait:
        out.waiting[u->id] = {WaitReason::kNoFit, name() + ": " + d.reason};
        break;
    }
  }
  return out;
}

std::optional<Dispatcher::Hold> Dispatcher::hold(const storage::ClaimableGroup& group, const FreeDevice& device,
                                                 const DispatchInput& context) const {
  const WorkUnit u = unit_of(group, context, *device.profile);
  const int64_t now_s = context.now_unix_ms / 1000;
  Decision d = policy_.place(u, nodes_of({device}), now_s);
  if (d.kind != Decision::Kind::kDefer) return std::nullopt;
  return Hold{hold_reason(u, now_s, d.retry_at_s), d.retry_at_s * 1000};
}

void PlacementBoard::update(const std::vector<std::string>& seen, const std::map<std::string, WaitNote>& waiting) {
  std::lock_guard lock(mu_);
  for (const std::string& id : seen) {
    auto it = waiting.find(id);
    if (it == waiting.end())
      notes_.erase(id);
    else
      notes_[id] = it->second;
  }
}

void PlacementBoard::set(const std::string& group_id, WaitNote note) {
  std::lock_guard lock(mu_);
  notes_[group_id] = std::move(note);
}

void PlacementBoard::clear(const std::string& group_id) {
  std::lock_guard lock(mu_);
  notes_.erase(group_id);
}

std::optional<WaitNote> PlacementBoard::note(const std::string& group_id) const {
  std::lock_guard lock(mu_);
  auto it = notes_.find(group_id);
  if (it == notes_.end()) return std::nullopt;
  return it->second;
}

}  // namespace mufl::scheduler
