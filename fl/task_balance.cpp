#include "fl/task_balance.h"

#include <algorithm>
#include <cmath>

namespace mufl::fl {


TaskBalance balance_for(TaskBalance balance, const std::vector<TaskDef>& tasks) {
  if (balance != TaskBalance::kByKind) return balance;
  const auto all = [&](TaskKind kind) {
    return std::all_of(tasks.begin(), tasks.end(), [&](const TaskDef& t) { return t.kind == kind; });
  };
  if (all(TaskKind::kDense)) return TaskBalance::kCapMerged;
  if (all(TaskKind::kLabel)) return TaskBalance::kCapEqual;
  return TaskBalance::kCap;
}

void limit_label_steps(const std::vector<torch::Tensor>& feature_grads, const std::vector<TaskDef>& tasks,
                       std::vector<double>& weights) {
  std::vector<double> terms;  // w_t·‖g_t‖
  double dense = 0;           // the longest dense term
  for (size_t t = 0; t < tasks.size(); ++t) {
    terms.push_back(feature_grads[t].norm().item<double>() * weights[t]);
    if (tasks[t].kind == TaskKind::kDense && std::isfinite(terms[t])) dense = std::max(dense, terms[t]);
  }
  if (!(dense > 0)) return;
  const double limit = kLabelStepLimit * dense;
  for (size_t t = 0; t < tasks.size(); ++t)
    if (tasks[t].kind == TaskKind::kLabel && std::isfinite(terms[t]) && terms[t] > limit) weights[t] *= limit / terms[t];
}

double split_ramp_step(TaskBalance balance, EncoderGradient combine, const std::vector<TaskDef>& tasks,
                       int64_t rounds_since_split) {
  // by_kind's label rule (balance_for) is what resolves to cap_equal; a chosen cap_equal is not ramped.
  if (balance != TaskBalance::kByKind || combine != EncoderGradient::kSum) return 1.0;
  if (rounds_since_split < 0 || rounds_since_split >= kSplitRampRounds) return 1.0;
  if (balance_for(balance, tasks) != TaskBalance::kCapEqual) return 1.0;  // not label tasks only
  const double done = static_cast<double>(rounds_since_split) / static_cast<double>(kSplitRampRounds);
  return std::pow(kSplitRampStart, 1.0 - done);
}

std::vector<double> lookahead_weights(const std::vector<torch::Tensor>& feature_grads, EncoderGradient combine,
                                      TaskBalance balance) {
  if (balance == TaskBalance::kNone) return std::vector<double>(feature_grads.size(), 1.0);
  return task_weights(feature_grads, combine, balance);  // balanced weights never carry the 1/K
}

std::vector<double> task_weights(const std::vector<torch::Tensor>& feature_grads, EncoderGradient combine,
                                 TaskBalance balance) {
  TORCH_CHECK(balance != TaskBalance::kByKind, "task_weights: resolve by_kind with balance_for first");
  const size_t k = feature_grads.size();
  const double mean = combine == EncoderGradient::kMean && k > 1 ? 1.0 / static_cast<double>(k) : 1.0;
  if (balance == TaskBalance::kNone || k < 2) return std::vector<double>(k, mean);
  if (balance == TaskBalance::kCapMerged && combine == EncoderGradient::kSum) return std::vector<double>(k, 1.0);
  std::vector<double> weights(k, 1.0);  // capped terms are summed, in every group
  std::vector<double> norms;
  double log_sum = 0;
  size_t counted = 0;
  for (const auto& g : feature_grads) {
    norms.push_back(g.norm().item<double>());
    if (std::isfinite(norms.back()) && norms.back() > 0) log_sum += std::log(norms.back()), ++counted;
  }
  if (counted == 0) return weights;
  double cap = std::exp(log_sum / static_cast<double>(counted));  // geometric mean of the norms
  if (balance == TaskBalance::kCapEqual && combine == EncoderGradient::kSum)
    for (double n : norms)
      if (std::isfinite(n) && n > 0) cap = std::min(cap, n);  // the shortest
  for (size_t t = 0; t < k; ++t)
    if (std::isfinite(norms[t]) && norms[t] > cap) weights[t] = cap / norms[t];
  return weights;
}

std::vector<double> mates_alignment(const std::vector<torch::Tensor>& feature_grads, const std::vector<double>& weights) {
  TORCH_CHECK(feature_grads.size() == weights.size(), "mates_alignment: one weight per gradient");
  if (feature_grads.empty()) return {};
  std::vector<double> out;
  for (size_t t = 0; t < feature_grads.size(); ++t) {
    const auto own = feature_grads[t].flatten();
    // Summed afresh, not the combined gradient minus t's term: a converged task's term can be
    // 1e-8 of its mates', and float32 cancellation would leave noise.
    torch::Tensor mates = torch::zeros_like(own);
    for (size_t s = 0; s < feature_grads.size(); ++s)
      if (s != t) mates.add_(feature_grads[s].flatten(), weights[s]);
    const double norms = own.norm().item<double>() * mates.norm().item<double>();
    const double cosine = norms > 0 ? own.dot(mates).item<double>() / norms : 0.0;
    out.push_back(std::isfinite(cosine) ? std::clamp(cosine, -1.0, 1.0) : 0.0);
  }
  return out;
}

}  // namespace mufl::fl
