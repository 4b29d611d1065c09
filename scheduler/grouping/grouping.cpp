#include "scheduler/grouping/grouping.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/catalog.h"

namespace mufl::scheduler {

const char* to_string(GroupingPolicy p) {
  switch (p) {
    case GroupingPolicy::kMufl: return "mufl";
    case GroupingPolicy::kAllInOne: return "all_in_one";
    case GroupingPolicy::kIndependent: return "independent";
    case GroupingPolicy::kSequential: return "sequential";
  }
  return "?";
}

std::optional<GroupingPolicy> parse_grouping_policy(std::string_view s) {
  for (auto p : {GroupingPolicy::kMufl, GroupingPolicy::kAllInOne, GroupingPolicy::kIndependent,
                 GroupingPolicy::kSequential})
    if (s == to_string(p)) return p;
  return std::nullopt;
}

nlohmann::json shared_config(const ActivitySpec& spec) {
  nlohmann::json partition = {{"kind", spec.partition.kind}};
  if (spec.partition.kind == "dirichlet") partition["alpha"] = spec.partition.alpha;
  nlohmann::json c = {{"dataset", spec.dataset},
          {"clients", spec.clients},
          {"clients_per_round", spec.clients_per_round},
          {"min_clients", spec.min_clients},
          {"local_epochs", spec.local_epochs},
          {"batch_size", spec.batch_size},
          {"learning_rate", spec.learning_rate},
          {"prox_mu", spec.prox_mu},
          {"aggregator", spec.aggregator},
          {"partition", partition},
          {"seed", spec.seed}};
  // Activities on a federation share its clients, their round deadline and the model's input.
  // (Added only then, so that a catalog activity's key is what it always was.)
  // The seed papers' options (issue 17), likewise only when asked for.
  if (spec.weighting != "samples") c["weighting"] = spec.weighting;
  if (spec.personalized_epochs) c["personalized_epochs"] = true;
  // FedEMA: members that start their clients differently, or with another λ, cannot share a model.
  if (spec.local_update != "fedavg") {
    c["local_update"] = spec.local_update;
    c["ema_lambda"] = spec.ema_lambda;
  }
  // Client clustering: members cluster their shared clients once, on the merged model's updates,
  // and keep one multi-task model per cluster (a split's children keep the clusters).
  if (spec.client_clusters > 1) {
    c["client_clusters"] = spec.client_clusters;
    c["cluster_round"] = spec.cluster_round;
  }
  // ssl trains on two augmented views of each image: it merges only with other ssl activities.
  if (spec.task == "ssl") c["input"] = "paired_views";
  if (!spec.federation.empty()) {
    c["federation"] = spec.federation;
    c["round_timeout_seconds"] = spec.round_timeout_seconds;
    c["schema"] = {spec.schema.channels, spec.schema.height, spec.schema.width, spec.schema.labels};
  }
  return c;
}

std::string compat_key(const Activity& activity, const GroupingOptions& options) {
  std::string key = shared_config(activity.spec).dump();  // nlohmann sorts keys: a canonical form
  if (!options.merge_across_tenants) key += "|tenant=" + activity.tenant_id;
  if (!options.merge_loss_kinds) key += "|loss=" + loss_kind(activity.spec.task);
  return key;
}

std::string loss_kind(const std::string& task) {
  const TaskInfo* info = Catalog::builtin().task(task);
  return info ? info->kind : task;
}

int64_t consolidation_rounds(int64_t longest_rounds, double fraction) {
  const auto r = static_cast<int64_t>(std::ceil(fraction * static_cast<double>(longest_rounds) - 1e-9));
  return std::clamp<int64_t>(r, 1, std::max<int64_t>(1, longest_rounds));
}

namespace {

bool merges(GroupingPolicy p) { return p == GroupingPolicy::kMufl || p == GroupingPolicy::kAllInOne; }

int live_members(const Group& g) {
  return static_cast<int>(std::count_if(g.members.begin(), g.members.end(), [](const GroupMember& m) { return !m.left_round; }));
}

GroupMember member_of(const Activity& a, int64_t joined_round) {
  return GroupMember{a.id, a.tenant_id, a.spec.task, joined_round, std::nullopt, {}};
}

Group new_group(const std::string& id, const std::vector<const Activity*>& members, GroupPhase phase,
                const GroupingOptions& options, const std::string& key) {
  Group g;
  g.id = id;
  g.phase = phase;
  g.policy = to_string(options.policy);
  g.compat_key = key;
  g.config_json = shared_config(members.front()->spec).dump();
  int64_t longest = 0;
  for (const Activity* a : members) {
    longest = std::max(longest, a->spec.rounds);
    g.members.push_back(member_of(*a, 0));
  }
  g.consolidation_rounds = consolidation_rounds(longest, options.consolidation_fraction);
  return g;
}

}  // namespace

GroupingDecision plan_groups(const std::vector<Activity>& ungrouped, const std::vector<Group>& live,
                             const GroupingOptions& options, int64_t now_unix_ms,
                             const std::function<std::string()>& new_group_id) {
  GroupingDecision out;
  const auto window_ms = static_cast<int64_t>(std::llround(options.merge_window_seconds * 1000.0));
  // Activities that will merge, by compatibility key, oldest first.
  std::map<std::string, std::vector<const Activity*>> pending;
  std::vector<std::string> key_order;
  std::map<std::string, int> joins_to;  // joins planned in this call, per group
  for (const Activity& a : ungrouped) {
    if (!merges(options.policy) || !a.spec.merge) {
      // Alone. Its group trains to the end; it still measures nothing (one head). Its key is
      // its own, so no later compatible arrival joins it.
      out.plan.new_groups.push_back(
          new_group(new_group_id(), {&a}, GroupPhase::kTraining, options, compat_key(a, options) + "|alone=" + a.id));
      continue;
    }
    const std::string key = compat_key(a, options);
    // Join a live group of the same kind that is still early enough.
    const Group* host = nullptr;
    for (const Group& g : live)
      if (g.compat_key == key && g.policy == to_string(options.policy) && is_live(g.phase) &&
          g.round < g.consolidation_rounds && live_members(g) + joins_to[g.id] < options.max_members &&
          (!host || g.seq < host->seq))
        host = &g;
    if (host) {
      out.plan.joins.emplace_back(host->id, member_of(a, host->round));
      ++joins_to[host->id];
      continue;
    }
    if (!pending.count(key)) key_order.push_back(key);
    pending[key].push_back(&a);
  }
  const GroupPhase merged_phase =
      options.policy == GroupingPolicy::kMufl ? GroupPhase::kConsolidating : GroupPhase::kTraining;
  for (const std::string& key : key_order) {
    const auto& acts = pending[key];
    size_t i = 0;
    while (i < acts.size()) {
      const int64_t opens = acts[i]->created_unix_ms;
      if (now_unix_ms < opens + window_ms) {
        // The window is still open: wait for more arrivals.
        const int64_t at = opens + window_ms;
        out.replan_at_unix_ms = out.replan_at_unix_ms ? std::min(*out.replan_at_unix_ms, at) : at;
        break;
      }
      // Everything compatible that is waiting now: what arrived after the window but before
      // this plan would join the new group at its round 0 anyway.
      const size_t take = std::min(acts.size() - i, static_cast<size_t>(std::max(1, options.max_members)));
      std::vector<const Activity*> members(acts.begin() + static_cast<std::ptrdiff_t>(i),
                                           acts.begin() + static_cast<std::ptrdiff_t>(i + take));
      i += take;
      out.plan.new_groups.push_back(new_group(new_group_id(), members, merged_phase, options, key));
    }
  }
  return out;
}

}  // namespace mufl::scheduler
