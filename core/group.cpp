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

}  // namespace mufl
