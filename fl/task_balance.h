#pragma once
// The weight of each task's gradient in a multi-head step's encoder gradient. Internal to fl/.
//
// Every head trains on the same encoder output (the shared features). Each task's loss gives
// a gradient g_t at those features; the encoder backpropagates Σ_t w_t·g_t. Balancing acts
// there, at the features (as MGDA-UB and GradNorm do at the last shared layer): it costs one
// norm per task, where balancing the encoder's parameter gradients would cost one backward pass
// through the encoder per task, the very work a merged model exists to share.
//
// kCapMerged: kCap in a merged group, the plain sum in a group born of a split. On the mnist
// dense trio trained together from the start (bench/mufl --tasks reconstruct,segment,edges
// --policies all_in_one, final loss ÷ alone) capped gives segment 1.365 (its term is the one
// cut, to a third), summed 0.611 / 1.002 / 0.948: aligned tasks gain from the sum. Where a split
// pairs a label task with a dense one the sum ruins the dense one (fashion, seed 1: ×2.93), so
// it is not the default (docs/merge-and-split.md).
// kByKind (the default): in a group born of a split, the rule its tasks' kind needs; kCap in a
// merged group and in a split group that mixes kinds. Measured (bench/mufl, final loss ÷ alone,
// docs/merge-and-split.md, "Balancing by the kinds of a split group's tasks"):
//   - dense tasks only: the plain sum (kCapMerged). Each task takes its own full step, as alone;
//     the cap cut the longest one (mnist segment, its own step a third) and it lost: segment
//     1.438 → 1.053, fashion reconstruct 1.410 → 1.304;
//   - label tasks only: every step cut to the shortest (kCapEqual). A label task is harmed by an
//     unaligned mate's step longer than its own (mnist class beside parity, whose feature
//     gradient is about 1.9 times class's: 1.27 summed, 1.04 capped, 0.92 equal); parity too
//     gains (0.51 → 0.43);
//   - mixed, or merged: kCap. A label task's cross-entropy gives feature gradients 220 to 4,400
//     times a dense task's, so equal steps would stop the label task and the sum would ruin the
//     dense one (fashion seed 1, a split pairing class with reconstruct, summed: ×2.93).
//   - and in a merged group of label and dense tasks, train_local fits the label heads first
//     (fl/training.h, probes_label_heads) and limits the label tasks' steps (limit_label_steps,
//     below): the dense tasks lose nothing in the merged rounds.
// kCap: the capped terms summed, in a merged group as in one born of a split. Measured (bench/mufl, docs/merge-and-split.md):
//   - scaling every term *to* a common norm (the mean) multiplies a small-gradient task's
//     effective learning rate by the ratio of the norms (about 100 between a label task's
//     cross-entropy and a dense task's per-pixel MSE) and diverged in the first merged round
//     (train loss 253 against 7 unbalanced); capping only ever shortens steps;
//   - capped terms averaged (1/K) while merged and summed after the split made the label
//     group's encoder step jump at the split and diverge (train loss 3.06); summed throughout,
//     the step is continuous and bounded by K times the cap.
#include <torch/torch.h>

#include <vector>

#include "fl/encoder_gradient.h"
#include "fl/tasks.h"

namespace mufl::fl {

// w_t for each task's feature gradient, in the same order:
//   kNone: 1 (kSum) or 1/K (kMean);
//   kCap:  min(1, c/‖g_t‖), c the geometric mean of the non-zero finite ‖g_t‖, whatever
//          `combine` says. A zero or non-finite gradient keeps weight 1 (a NaN reaches the loss
//          check unchanged);
//   kCapMerged: kCap's weights in a merged group (kMean), 1 in a group born of a split (kSum);
//   kCapEqual: kCap's weights in a merged group (kMean); in a group born of a split (kSum) the
//          same with c the shortest non-zero finite ‖g_t‖;
//   kByKind: refused (TORCH_CHECK): resolve it with balance_for first.
// One task: always 1.
std::vector<double> task_weights(const std::vector<torch::Tensor>& feature_grads, EncoderGradient combine,
                                 TaskBalance balance);

// The rule a group of `tasks` trains by: kByKind resolved to kCapMerged (every task dense),
// kCapEqual (every task a label task) or kCap (any other mix, ssl included); every other rule
// as it is.
TaskBalance balance_for(TaskBalance balance, const std::vector<TaskDef>& tasks);

// by_kind in a merged group of label and dense tasks (fl/training.h, probes_label_heads):
// after task_weights(), each label task's term w_t·‖g_t‖ is cut to at most kLabelStepLimit
// times the longest dense task's term. Without dense tasks, or with no dense gradient, nothing
// changes. The geometric mean lets a label task move the encoder about five times the longest
// dense task's step on mnist, and more as its head overshoots (the mean grows with its norm);
// fashion's reconstruct lost most of its ground in the first merged round (×1.75 alone's).
// Limited, mnist seed 0 ends with every task at most ×0.948 of alone, fashion reconstruct at
// ×0.985 (docs/merge-and-split.md, "Label steps limited by the dense ones while merged").
constexpr double kLabelStepLimit = 2.0;
void limit_label_steps(const std::vector<torch::Tensor>& feature_grads, const std::vector<TaskDef>& tasks,
                       std::vector<double>& weights);

// by_kind's ramp: the encoder_step (fl/training.h) of a group of label tasks only, born of a
// split (kSum), in its round `rounds_since_split` (0 = its first): kSplitRampStart in the
// first, kSplitRampStart^(1 − r/kSplitRampRounds) in round r, then 1. Everything else: 1.
// Why: while merged, a label task's feature gradient is capped at the geometric mean of all
// the tasks' norms; the dense tasks (220 to 4,400 times shorter) hold it at 1/25 to 1/150 of a
// label task's own on mnist. After the split its step is its own length (cut to the shortest
// label task's), and the encoder, shaped at the short step, jumped: mnist class's test loss rose
// from 2.1 to 3.8–6.4 times its loss alone in the first round after the split, and did not
// always recover (×1.15–1.96 at the end). Ramped, it falls at once (×0.80) and ends at
// ×0.52–0.69 (docs/merge-and-split.md, "Label heads fitted first, and a ramp after the split").
constexpr double kSplitRampStart = 0.1;
constexpr int64_t kSplitRampRounds = 2;
double split_ramp_step(TaskBalance balance, EncoderGradient combine, const std::vector<TaskDef>& tasks,
                       int64_t rounds_since_split);

// Each task's alignment with its mates in one step: the cosine between feature_grads[t] and
// Σ_{s≠t} weights[s]·feature_grads[s] (the rest of the encoder's gradient), in [-1, 1]; 0 where
// either side is zero. Above 0, the mates' step also lowers task t's loss (to first order).
// The merge guard spares a stalled member that its mates help (scheduler/grouping/merge_guard.h).
// Measured (bench/mufl, seed 0, the mean over a round's clients): mnist's label pair +0.16 to
// +0.17 in every round after the split, the dense trio reconstruct +0.46, segment +0.36, edges
// +0.06 falling to +0.036; fashion's label pair +0.13 to +0.19, its dense pair -0.016 in its
// first round (96 % of the steps pulling apart), about 0 by its tenth, +0.002 by its sixteenth.
std::vector<double> mates_alignment(const std::vector<torch::Tensor>& feature_grads, const std::vector<double>& weights);

// The weights the affinity lookahead steps each task with: task_weights() without kNone's 1/K,
// so that the split sees each task move the encoder as training moves it, at a task's full length.
std::vector<double> lookahead_weights(const std::vector<torch::Tensor>& feature_grads, EncoderGradient combine,
                                      TaskBalance balance);

}  // namespace mufl::fl
