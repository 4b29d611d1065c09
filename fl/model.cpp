#include "fl/model.h"

namespace mufl::fl {
namespace nn = torch::nn;

MultiTaskNetImpl::MultiTaskNetImpl(const std::vector<TaskDef>& tasks) : tasks_(tasks) {
  encoder_ = register_module(
      "encoder", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2),
                                nn::Conv2d(nn::Conv2dOptions(16, 32, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2)));
  // Heads are registered as "head_<task>" so weight names say which task they serve. (Not plain
  // "<task>": torch::save goes through TorchScript, where "class" is a reserved word.)
  for (const auto& t : tasks_) {
    nn::Sequential h{nullptr};
    if (t.kind == TaskKind::kLabel) {
      h = nn::Sequential(nn::Flatten(), nn::Linear(32 * 7 * 7, 64), nn::ReLU(), nn::Linear(64, t.outputs));
    } else {
      h = nn::Sequential(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(32, 16, 2).stride(2)), nn::ReLU(),
                         nn::ConvTranspose2d(nn::ConvTranspose2dOptions(16, t.outputs, 2).stride(2)));
    }
    register_module("head_" + t.name, h.ptr());
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

}  // namespace mufl::fl
