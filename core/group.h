#pragma once
// Group: the unit the executor trains. Every training activity is a member of exactly one live
// group; a group trains one model with a shared encoder and one head per member (MuFL's
// "merge"). A `consolidating` group measures task affinity and, after its consolidation rounds,
// splits into child groups (phase `split`); the children, and groups that never split, are
// `training` until every member has finished (`done`) or one failure stops them (`failed`).
//
//   consolidating → split                      (its members move to the children)
//   consolidating | training → done | failed
//
// Rounds are counted over the lineage: a child starts at the round its parent split after.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mufl {

// The names are stored in SQLite: never rename one.
enum class GroupPhase { kConsolidating, kTraining, kSplit, kDone, kFailed };

inline constexpr GroupPhase kAllGroupPhases[] = {GroupPhase::kConsolidating, GroupPhase::kTraining, GroupPhase::kSplit,
                                                 GroupPhase::kDone, GroupPhase::kFailed};

const char* to_string(GroupPhase p);
std::optional<GroupPhase> parse_group_phase(std::string_view s);
// Consolidating and training groups are live: they have members that still train.
inline bool is_live(GroupPhase p) { return p == GroupPhase::kConsolidating || p == GroupPhase::kTraining; }

struct GroupMember {
  std::string activity_id;
  std::string tenant_id;
  std::string task;
  int64_t joined_round = 0;               // lineage rounds done when it joined
  std::optional<int64_t> left_round;      // lineage rounds done when it left (finished, moved, cancelled)
  // Why it left: "split", "guard" (its loss fell behind while merged:
  // scheduler/grouping/merge_guard.h), "finished", "cancelled" or "failed"; empty while it trains
  // (and for rows older than the field).
  std::string left_reason;
  bool operator==(const GroupMember&) const = default;
};

// One head of the group's model as of its checkpoint: keyed by its activity id.
struct GroupHead {
  std::string key;   // activity id
  std::string task;
  bool operator==(const GroupHead&) const = default;
};

struct Group {
  std::string id;               // "grp_…"
  int64_t seq = 0;              // creation order; the basis of pagination
  std::string parent_id;        // the group it was split from; empty for a merge
  GroupPhase phase = GroupPhase::kConsolidating;
  std::string policy;           // grouping policy that formed it (mufl, all_in_one, …)
  std::string compat_key;       // activities with equal keys may share this group
  std::string config_json;      // the shared training settings (JSON object, see scheduler/grouping/grouping.h)
  int64_t consolidation_rounds = 0;  // lineage round after which it splits (consolidating only)
  int64_t round = 0;            // lineage rounds done
  // The checkpoint describes a job with these heads that started at lineage round
  // `job_round_offset` (see fl::JobConfig::round_offset). Empty heads: no checkpoint yet.
  std::vector<GroupHead> heads;
  int64_t job_round_offset = 0;
  std::string checkpoint_path, checkpoint_sha256;
  std::string device;           // where it trains now; empty when it waits
  std::string split_json;       // the split decision (JSON object); empty before it
  std::string reason;           // why it failed
  int64_t created_unix_ms = 0;
  int64_t updated_unix_ms = 0;
  std::vector<GroupMember> members;  // every member it ever had, in join order
  bool operator==(const Group&) const = default;
};

// The heads of the members that have not left, in join order.
std::vector<GroupHead> live_heads(const Group& g);

}  // namespace mufl
