#include "core/group.h"

namespace mufl {

const char* to_string(GroupPhase p) {
  switch (p) {
    case GroupPhase::kConsolidating: return "consolidating";
    case GroupPhase::kTraining: return "training";
    case GroupPhase::kSplit: return "split";
    case GroupPhase::kDone: return "done";
    case GroupPhase::kFailed: return "failed";
  }
  return "unknown";
}

std::optional<GroupPhase> parse_group_phase(std::string_view s) {
  for (GroupPhase p : kAllGroupPhases)
    if (s == to_string(p)) return p;
  return std::nullopt;
}

std::vector<GroupHead> live_heads(const Group& g) {
  std::vector<GroupHead> out;
  for (const auto& m : g.members)
    if (!m.left_round) out.push_back({m.activity_id, m.task});
  return out;
}

}  // namespace mufl
