#pragma once
// MultiTaskNet: one shared convolutional encoder and one head per task. This is the shape
// MuFL needs: merged activities train one encoder with all their heads; a split copies the
// encoder and takes the heads of its group. With one head it is an ordinary single-task net.
//
// The encoder carries almost all of the compute, so that one pass through it serves every task
// of a merged group (DESIGN.md: merging saves nothing when heads cost as much as the encoder).
// For the catalog's 1×28×28 images (a C×H×W input in general, InputShape):
//   stem:   conv C→16 3×3, GroupNorm, ReLU, max-pool 2                     → [16, 14, 14]
//   block1: residual block 16→16 (two conv 3×3 + GroupNorm)                → [16, 14, 14]
//   block2: residual block 16→32, stride 2 (1×1 conv + GroupNorm shortcut) → [32, 7, 7]
//   label head: flatten → linear 32·7·7→outputs
//   ssl head:   flatten → SimSiam projector and predictor (fl/simsiam.h) → [2·outputs]
//   dense head: conv 1×1 32→32, ReLU, conv 1×1 32→16·outputs, pixel shuffle ×4 → [outputs, 28, 28]
// The features are [32, ⌈⌊H/2⌋/2⌉, …]; a dense head's map is 4× that, the input's size when H
// and W are multiples of 4 (dense_fits()).
// GroupNorm, not BatchNorm: it has no running statistics, so a model is its parameters alone,
// FedAvg averages all of it, and train and eval modes compute the same function (GroupNorm is
// also the usual choice for non-IID FL: Hsieh et al., ICML 2020).
// Heads are named by a key ("head_<key>"): the task name for a single-task model, the
// activity id in a merged group, where two activities may train the same task.
// Internal to fl/ (torch types).
#include <torch/torch.h>

#include <string>
#include <vector>

#include "fl/tasks.h"
#include "fl/weights.h"

namespace mufl::fl {

// What one input image is. The catalog's data sets are all 1×28×28.
struct InputShape {
  int64_t channels = 1, height = 28, width = 28;
  bool operator==(const InputShape&) const = default;
};
// Whether dense heads map back to the input's size (its sides are multiples of 4).
inline bool dense_fits(const InputShape& s) { return s.height % 4 == 0 && s.width % 4 == 0; }

class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t in, int64_t out, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::GroupNorm norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Sequential shortcut_{nullptr};  // empty when shapes already match
};
TORCH_MODULE(ResidualBlock);

class MultiTaskNetImpl : public torch::nn::Module {
 public:
  // `keys` name the heads (unique, [A-Za-z0-9_] only); empty means the task names. Dense tasks
  // need dense_fits(input) (TORCH_CHECK).
  explicit MultiTaskNetImpl(const std::vector<TaskDef>& tasks, const std::vector<std::string>& keys = {},
                            InputShape input = {});

  torch::Tensor encode(const torch::Tensor& images);
  // The output of head `i` (in the order of the constructor's tasks) on encoded features.
  torch::Tensor head(size_t i, const torch::Tensor& features);
  // One output per task, in the constructor's order.
  std::vector<torch::Tensor> forward(const torch::Tensor& images);

  const std::vector<TaskDef>& tasks() const { return tasks_; }
  const std::vector<std::string>& keys() const { return keys_; }
  const InputShape& input() const { return input_; }
  // The shared encoder's parameters (what the affinity lookahead steps).
  std::vector<torch::Tensor> encoder_parameters() const { return encoder_->parameters(); }
  // Head i's parameters (REQUIRES: i < tasks().size()).
  std::vector<torch::Tensor> head_parameters(size_t i) const { return heads_.at(i)->parameters(); }

 private:
  std::vector<TaskDef> tasks_;
  std::vector<std::string> keys_;
  InputShape input_;
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

// Copies parameters of `from` into `to`: the encoder when `encoder` is true, and head
// `from_key` of `from` into head `to_key` of `to` for each pair in `heads`. Shapes must match
// (same task); throws c10::Error otherwise. Returns the number of tensors copied.
size_t copy_weights(MultiTaskNet& from, MultiTaskNet& to, const std::vector<std::pair<std::string, std::string>>& heads,
                    bool encoder = true);

}  // namespace mufl::fl
