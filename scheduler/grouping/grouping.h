#pragma once
// Grouping: which activities train together. The planner looks at queued activities that no
// group holds yet and at the live groups, and decides, per deployment policy (--grouping):
//   mufl         compatible activities merge into one `consolidating` group, which measures
//                task affinity and splits by it after its consolidation rounds (MuFL / MAS);
//   all_in_one   the same merge, never split (a `training` group to the end);
//   independent  every activity alone, all at once on the free devices;
//   sequential   every activity alone, one at a time across the whole service.
// An activity with "merge": false always trains alone.
//
// Compatible (may share a group) = the same shared training settings (shared_config: data set
// and so input shape, client population and partition, seed, local training settings and
// aggregator), and the same tenant unless merging across tenants is allowed. `rounds` may
// differ: each activity leaves its group when it has trained its own rounds.
//
// Merge window: a group forms once its oldest ungrouped compatible activity has waited
// `merge_window_seconds`; it takes every ungrouped compatible activity waiting at that moment. A
// compatible activity that arrives while a group is still in its first `consolidation_rounds`
// rounds joins it with a fresh head (mufl and all_in_one).
// Consolidation: ceil(consolidation_fraction · the longest member's rounds), at least 1.
// Size: at most `max_members` activities per group (joins included).
//
// Pure: no I/O, no clock, no threads; the executor applies the plan through the Store.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/activity.h"
#include "core/group.h"
#include "storage/store.h"

namespace mufl::scheduler {

enum class GroupingPolicy { kMufl, kAllInOne, kIndependent, kSequential };
const char* to_string(GroupingPolicy p);
std::optional<GroupingPolicy> parse_grouping_policy(std::string_view s);

struct GroupingOptions {
  GroupingPolicy policy = GroupingPolicy::kMufl;
  double merge_window_seconds = 0;
  double consolidation_fraction = 0.15;
  bool merge_across_tenants = true;
  // Whether tasks of different loss kinds (core/catalog.h: "label", "dense") may share a group.
  // false: a label task merges only with label tasks, a dense one with dense ones (issue 14, the
  // measurements in docs/merge-and-split.md: at the shared features their gradients differ in
  // length 220 to 4,400 times and are orthogonal, so the label tasks' steps move the features
  // faster than a dense head can follow). "embedding" (ssl) never merges with another kind.
  bool merge_loss_kinds = true;
  // Whether a split keeps loss kinds apart: no group born of a split holds a label task and a
  // dense one (SplitOptions::kinds). Merged, the kinds share the consolidation; split, each kind
  // gets its own encoder rule (fl/task_balance.h, by_kind). false: the split may mix them.
  bool split_by_loss_kind = true;
  // Most activities one group trains (heads of one model). Each head adds its cost to every
  // step, so an unbounded merge would make one huge, slow model; beyond this, a new group forms.
  int max_members = 16;
};

// The settings every member of a group shares, as stored in Group::config_json.
nlohmann::json shared_config(const ActivitySpec& spec);
// The loss kind `task` trains with (core/catalog.h: "label", "dense", "embedding"); a task the
// catalog does not know is a kind of its own, named after it. What merge_loss_kinds and
// split_by_loss_kind compare.
std::string loss_kind(const std::string& task);

// Equal keys ⇔ compatible (for a policy that merges).
std::string compat_key(const Activity& activity, const GroupingOptions& options);
// Lineage round after which a group with members of these rounds ends consolidation.
int64_t consolidation_rounds(int64_t longest_rounds, double fraction);

struct GroupingDecision {
  storage::GroupPlan plan;
  // When set, the plan may change at this time without any new event (a merge window ends):
  // plan again then.
  std::optional<int64_t> replan_at_unix_ms;
};

// `ungrouped`: queued activities without a group, oldest first. `live`: live groups with their
// members. `new_group_id` makes ids for new groups.
GroupingDecision plan_groups(const std::vector<Activity>& ungrouped, const std::vector<Group>& live,
                             const GroupingOptions& options, int64_t now_unix_ms,
                             const std::function<std::string()>& new_group_id);

}  // namespace mufl::scheduler
