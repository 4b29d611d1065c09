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
// kCapDenseSum: the plain sum in a group born of a split whose tasks are all dense, kCap in any
// other group. Per-pixel tasks split into one group share most of what they need from the
// features, and each one's own full step is what it takes alone; the sum ruins a task only where
// a mate's step is far longer and unaligned (a label task's cross-entropy, 220 to 4,400 times a
// dense task's at the features) or where two label tasks pull one flattened map apart (mnist
// class beside parity: ×1.27 summed, ×1.10 capped). Measured against kCap (bench/mufl, final loss
// ÷ alone, docs/merge-and-split.md): mnist segment 1.438 → 1.053, fashion reconstruct 1.410 →
// 1.304, every label task the same.
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
//   kCapMerged: kCap's weights in a merged group (kMean), 1 in a group born of a split (kSum).
// One task: always 1.
std::vector<double> task_weights(const std::vector<torch::Tensor>& feature_grads, EncoderGradient combine,
                                 TaskBalance balance);

// The rule a group of `tasks` trains by: kCapDenseSum resolved to kCapMerged (every task
// dense) or kCap (any other); every other rule as it is.
TaskBalance balance_for(TaskBalance balance, const std::vector<TaskDef>& tasks);

// The weights the affinity lookahead steps each task with: task_weights() without kNone's 1/K,
// so that the split sees each task move the encoder as training moves it, at a task's full length.
std::vector<double> lookahead_weights(const std::vector<torch::Tensor>& feature_grads, EncoderGradient combine,
                                      TaskBalance balance);

}  // namespace mufl::fl
