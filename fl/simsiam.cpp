#include "fl/simsiam.h"

namespace mufl::fl {
namespace nn = torch::nn;

SimSiamHeadImpl::SimSiamHeadImpl(int64_t in_features, int64_t dim, int64_t hidden) {
  projector_ = register_module("projector", nn::Sequential(nn::Linear(in_features, dim), BatchStandardize(), nn::ReLU(),
                                                           nn::Linear(dim, dim), BatchStandardize()));
  predictor_ = register_module("predictor",
                               nn::Sequential(nn::Linear(dim, hidden), BatchStandardize(), nn::ReLU(), nn::Linear(hidden, dim)));
}

torch::Tensor BatchStandardizeImpl::forward(const torch::Tensor& x) {
  const auto mean = x.mean(0, /*keepdim=*/true);
  const auto var = (x - mean).pow(2).mean(0, /*keepdim=*/true);
  return (x - mean) * torch::rsqrt(var + 1e-5);
}

torch::Tensor SimSiamHeadImpl::forward(const torch::Tensor& features) {
  const auto z = projector_->forward(features);
  return torch::cat({z, predictor_->forward(z)}, 1);
}

torch::Tensor simsiam_loss(const torch::Tensor& p1, const torch::Tensor& z1, const torch::Tensor& p2,
                           const torch::Tensor& z2) {
  namespace F = torch::nn::functional;
  const auto options = F::CosineSimilarityFuncOptions().dim(1);
  return -0.5 * (F::cosine_similarity(p1, z2.detach(), options).mean() +
                 F::cosine_similarity(p2, z1.detach(), options).mean());
}

torch::Tensor simsiam_loss(const torch::Tensor& head_output) {
  TORCH_CHECK(head_output.dim() == 2 && head_output.size(0) % 2 == 0 && head_output.size(1) % 2 == 0,
              "simsiam_loss: needs [2N, 2·dim] paired outputs, not ", head_output.sizes());
  const int64_t n = head_output.size(0) / 2, dim = head_output.size(1) / 2;
  const auto first = head_output.slice(0, 0, n), second = head_output.slice(0, n, 2 * n);
  return simsiam_loss(first.slice(1, dim, 2 * dim), first.slice(1, 0, dim), second.slice(1, dim, 2 * dim),
                      second.slice(1, 0, dim));
}

}  // namespace mufl::fl
