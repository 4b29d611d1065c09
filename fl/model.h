#pragma once
// MultiTaskNet: one shared convolutional encoder and one head per task. This is the shape
// MuFL needs: merged activities train one encoder with all their heads; a split copies the
// encoder and takes the heads of its group. With one task it is an ordinary single-task net.
//
//   encoder: conv 1→16 3×3, ReLU, max-pool 2 → conv 16→32 3×3, ReLU, max-pool 2 → [32, 7, 7]
//   label head: flatten → linear 1568→64 → ReLU → linear 64→outputs
//   dense head: transposed conv 32→16 ×2 → ReLU → transposed conv 16→1 ×2 → [1, 28, 28]
// No batch norm: its running statistics do not average well across clients.
// Internal to fl/ (torch types).
#include <torch/torch.h>

#include <string>
#include <vector>

#include "fl/tasks.h"
#include "fl/weights.h"

namespace mufl::fl {

class MultiTaskNetImpl : public torch::nn::Module {
 public:
  explicit MultiTaskNetImpl(const std::vector<TaskDef>& tasks);

  torch::Tensor encode(const torch::Tensor& images);
  // The output of head `i` (in the order of the constructor's tasks) on encoded features.
  torch::Tensor head(size_t i, const torch::Tensor& features);
  // One output per task, in the constructor's order.
  std::vector<torch::Tensor> forward(const torch::Tensor& images);

  const std::vector<TaskDef>& tasks() const { return tasks_; }

 private:
  std::vector<TaskDef> tasks_;
  torch::nn::Sequential encoder_{nullptr};
  std::vector<torch::nn::Sequential> heads_;
};
TORCH_MODULE(MultiTaskNet);

// The parameters as detached copies, in parameters() order; and their restore (shapes must match).
Weights get_weights(MultiTaskNet& model);
void set_weights(MultiTaskNet& model, const Weights& weights);

// Parameter names in the same order ("encoder.0.weight", "head_class.1.bias", …), so that
// merging and splitting can move the encoder and each head between models.
std::vector<std::string> weight_names(MultiTaskNet& model);

}  // namespace mufl::fl
