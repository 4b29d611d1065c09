#include "fl/model.h"

#include <map>

#include "fl/simsiam.h"

namespace mufl::fl {
namespace nn = torch::nn;

namespace {
// Groups of 4 channels: works for 8, 16 and 32 channels alike.
nn::GroupNorm group_norm(int64_t channels) { return nn::GroupNorm(nn::GroupNormOptions(channels / 4, channels)); }
nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}
}  // namespace

ResidualBlockImpl::ResidualBlockImpl(int64_t in, int64_t out, int64_t stride) {
  conv1_ = register_module("conv1", conv3x3(in, out, stride));
  norm1_ = register_module("norm1", group_norm(out));
  conv2_ = register_module("conv2", conv3x3(out, out));
  norm2_ = register_module("norm2", group_norm(out));
  shortcut_ = nn::Sequential();
  if (in != out || stride != 1) {
    shortcut_->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)));
    shortcut_->push_back(group_norm(out));
  }
  register_module("shortcut", shortcut_);
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  auto y = torch::relu(norm1_(conv1_(x)));
  y = norm2_(conv2_(y));
  return torch::relu(y + (shortcut_->is_empty() ? x : shortcut_->forward(x)));
}

MultiTaskNetImpl::MultiTaskNetImpl(const std::vector<TaskDef>& tasks, const std::vector<std::string>& keys,
                                   InputShape input)
    : tasks_(tasks), keys_(keys), input_(input) {
  if (keys_.empty())
    for (const auto& t : tasks_) keys_.push_back(t.name);
  TORCH_CHECK(keys_.size() == tasks_.size(), "MultiTaskNet: ", keys_.size(), " keys for ", tasks_.size(), " tasks");
  TORCH_CHECK(input.channels >= 1 && input.height >= 4 && input.width >= 4, "MultiTaskNet: input ", input.channels,
              "x", input.height, "x", input.width, " is too small");
  encoder_ = register_module("encoder", nn::Sequential(conv3x3(input.channels, 16), group_norm(16), nn::ReLU(),
                                                       nn::MaxPool2d(2), ResidualBlock(16, 16, 1),
                                                       ResidualBlock(16, 32, 2)));
  // The features' side: max-pool 2 floors, the stride-2 convolution (padding 1) rounds up.
  const int64_t fh = (input.height / 2 + 1) / 2, fw = (input.width / 2 + 1) / 2;
  // Heads are registered as "head_<key>" (not plain "<task>": torch::save goes through
  // TorchScript, where "class" is a reserved word).
  for (size_t i = 0; i < tasks_.size(); ++i) {
    const TaskDef& t = tasks_[i];
    nn::Sequential h{nullptr};
    if (t.kind == TaskKind::kLabel) {
      h = nn::Sequential(nn::Flatten(), nn::Linear(32 * fh * fw, t.outputs));
    } else if (t.kind == TaskKind::kSiamese) {
      // On the encoder's globally pooled features, as SimSiam's ResNet does: the representation
      // the linear probe reads (fl/linear_probe.h).
      h = nn::Sequential(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)), nn::Flatten(), SimSiamHead(32, t.outputs));
    } else {
      TORCH_CHECK(dense_fits(input), "MultiTaskNet: task ", t.name, " needs sides that are multiples of 4, not ",
                  input.height, "x", input.width);
      // Sub-pixel decoder (Shi et al., CVPR 2016): each 7×7 cell predicts its 4×4 block of the
      // 28×28 map. Measured on this CPU (batch 32, forward + backward): 0.9 ms, against 5.3 ms
      // for bilinear upsampling and a 3×3 convolution at full resolution, which made five
      // dense heads cost more than the encoder they share.
      h = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(32, 32, 1)), nn::ReLU(),
                         nn::Conv2d(nn::Conv2dOptions(32, 16 * t.outputs, 1)), nn::PixelShuffle(4));
    }
    register_module("head_" + keys_[i], h.ptr());
    heads_.push_back(h);
  }
}

torch::Tensor MultiTaskNetImpl::encode(const torch::Tensor& images) { return encoder_->forward(images); }

torch::Tensor MultiTaskNetImpl::head(size_t i, const torch::Tensor& features) { return heads_.at(i)->forward(features); }

std::vector<torch::Tensor> MultiTaskNetImpl::forward(const torch::Tensor& images) {
  const auto features = encode(images);
  std::vector<torch::Tensor> out;
  out.reserve(heads_.size());
  for (size_t i = 0; i < heads_.size(); ++i) out.push_back(head(i, features));
  return out;
}

Weights get_weights(MultiTaskNet& model) {
  torch::NoGradGuard no_grad;
  Weights w;
  for (const auto& p : model->parameters()) w.push_back(p.detach().clone());
  return w;
}

void set_weights(MultiTaskNet& model, const Weights& weights) {
  torch::NoGradGuard no_grad;
  auto params = model->parameters();
  TORCH_CHECK(params.size() == weights.size(), "set_weights: ", weights.size(), " tensors for ", params.size(),
              " parameters");
  for (size_t i = 0; i < params.size(); ++i) params[i].copy_(weights[i]);
}

std::vector<std::string> weight_names(MultiTaskNet& model) {
  std::vector<std::string> names;
  for (const auto& item : model->named_parameters()) names.push_back(item.key());
  return names;
}

size_t copy_weights(MultiTaskNet& from, MultiTaskNet& to, const std::vector<std::pair<std::string, std::string>>& heads,
                    bool encoder) {
  torch::NoGradGuard no_grad;
  std::map<std::string, std::string> rename;  // prefix in `to` → prefix in `from`
  if (encoder) rename["encoder."] = "encoder.";
  for (const auto& [from_key, to_key] : heads) rename["head_" + to_key + "."] = "head_" + from_key + ".";
  const auto source = from->named_parameters();
  size_t copied = 0;
  for (auto& item : to->named_parameters()) {
    const std::string& name = item.key();
    for (const auto& [to_prefix, from_prefix] : rename) {
      if (name.rfind(to_prefix, 0) != 0) continue;
      const auto* src = source.find(from_prefix + name.substr(to_prefix.size()));
      TORCH_CHECK(src != nullptr, "copy_weights: no ", from_prefix, name.substr(to_prefix.size()), " in the source");
      TORCH_CHECK(src->sizes().equals(item.value().sizes()), "copy_weights: shapes of ", name, " differ");
      item.value().copy_(*src);
      ++copied;
      break;
    }
  }
  return copied;
}

}  // namespace mufl::fl
