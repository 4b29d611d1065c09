#pragma once
// Torch-free, so that fl/fl_job.h (which the rest of mufl includes) can name it.

#include <optional>
#include <string_view>

namespace mufl::fl {

// How a multi-head step combines the tasks' gradients in the shared encoder (each head always
// gets its own task's full gradient). kMean: the encoder gets their mean, so its step does not
// grow with the number of heads — the merged phase, whose heads were not chosen for each other
// (five summed losses diverged). kSum: it gets their sum, so each task moves the encoder as far as
// it would alone — for a group born of a split, whose tasks were grouped because their updates
// lower each other's losses (bench/mufl, docs/merge-and-split.md: total test loss 0.1955 against 0.2276 with the mean).
enum class EncoderGradient { kMean, kSum };

// Whether the tasks' gradients are balanced before they are combined (fl/task_balance.h).
// kNone: as they come, so a task whose loss has large gradients (cross-entropy of a label task)
// shapes the encoder and a dense task's per-pixel mean barely moves it. kCap: no task's gradient
// at the shared features may be longer than the geometric mean of the tasks' norms, and the
// capped terms are summed in every group (EncoderGradient applies to kNone only).
// kCapMerged: kCap's capped sum in a merged group (kMean: its heads were not chosen for each
// other), the plain sum in a group born of a split (kSum: they were, for helping each other).
// kCapEqual: kCap in a merged group; in a group born of a split every task's gradient cut to
// the shortest of them, so that every task moves the encoder as far as the others.
// kByKind (the default): by the kinds of the group's tasks (fl/task_balance.h balance_for):
// kCapMerged if all are dense, kCapEqual if all are labels, kCap otherwise.
enum class TaskBalance { kNone, kCap, kCapMerged, kCapEqual, kByKind };

// "none" | "cap" | "cap_merged" | "cap_equal" | "by_kind"; nullopt for anything else.
inline std::optional<TaskBalance> parse_task_balance(std::string_view s) {
  if (s == "none") return TaskBalance::kNone;
  if (s == "cap") return TaskBalance::kCap;
  if (s == "cap_merged") return TaskBalance::kCapMerged;
  if (s == "cap_equal") return TaskBalance::kCapEqual;
  if (s == "by_kind") return TaskBalance::kByKind;
  return std::nullopt;
}
inline const char* to_string(TaskBalance b) {
  switch (b) {
    case TaskBalance::kCap: return "cap";
    case TaskBalance::kCapMerged: return "cap_merged";
    case TaskBalance::kCapEqual: return "cap_equal";
    case TaskBalance::kByKind: return "by_kind";
    case TaskBalance::kNone: break;
  }
  return "none";
}

}  // namespace mufl::fl
