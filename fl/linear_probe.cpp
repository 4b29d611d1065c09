#include "fl/linear_probe.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace mufl::fl {
namespace {

// The probe's training subset: every sample when there are few enough, else a fixed draw,
// sorted (so that the sums are added in the data set's order).
torch::Tensor probe_subset(int64_t n, int64_t max_samples) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (n > max_samples) {
    std::mt19937_64 rng(0x70726f6265ULL);  // "probe": fixed, so every job probes the same samples
    for (int64_t i = 0; i < max_samples; ++i) {  // partial Fisher-Yates, platform-independent
      const int64_t j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(n - i));
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
    }
    order.resize(static_cast<size_t>(max_samples));
    std::sort(order.begin(), order.end());
  }
  return torch::tensor(order, torch::kInt64);
}

// The encoder's features averaged over the image: [N, 32], what the ssl head reads.
torch::Tensor pooled_features(MultiTaskNet& model, const torch::Tensor& images) {
  return model->encode(images).mean({2, 3});
}

}  // namespace

torch::Tensor LinearProbe::predict(const torch::Tensor& features) const {
  return torch::addmm(bias, features.to(torch::kFloat32), weight).argmax(1);
}

void RidgeFit::add(const torch::Tensor& features, const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  const auto x = features.to(torch::kFloat32);
  const auto y = torch::one_hot(labels.to(torch::kInt64), classes_).to(torch::kFloat32);
  // Each batch's products in float32 (fast), their running sums in float64 (exact enough).
  const auto xt = x.t();
  if (n_ == 0) {
    const auto f64 = x.options().dtype(torch::kFloat64);
    sum_ = torch::zeros({x.size(1)}, f64);
    gram_ = torch::zeros({x.size(1), x.size(1)}, f64);
    cross_ = torch::zeros({x.size(1), classes_}, f64);
    counts_ = torch::zeros({classes_}, f64);
  }
  sum_ += x.sum(0).to(torch::kFloat64);
  gram_ += xt.mm(x).to(torch::kFloat64);
  cross_ += xt.mm(y).to(torch::kFloat64);
  counts_ += y.sum(0).to(torch::kFloat64);
  n_ += x.size(0);
}

LinearProbe RidgeFit::solve(double ridge) const {
  TORCH_CHECK(n_ > 0, "RidgeFit: no samples");
  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(n_);
  const auto mean = sum_ / n, prior = counts_ / n;
  const auto cov = gram_ - n * torch::outer(mean, mean);  // centred Σxxᵀ
  // A feature of (near) zero variance is left out (scale 0, so weight 0): scaling up the float32
  // rounding in its sums would give it a large, meaningless weight.
  const auto variance = cov.diagonal() / n;
  const auto scale = torch::where(variance > 1e-6, 1.0 / torch::sqrt(variance.clamp_min(1e-6)), torch::zeros_like(variance));
  const auto a = cov * torch::outer(scale, scale) + ridge * n * torch::eye(scale.size(0), scale.options());
  const auto b = (cross_ - n * torch::outer(mean, prior)) * scale.unsqueeze(1);
  const auto w = torch::linalg_solve(a, b) * scale.unsqueeze(1);  // on raw features
  LinearProbe p;
  p.weight = w.to(torch::kFloat32);
  p.bias = (prior - mean.matmul(w)).to(torch::kFloat32);
  return p;
}

double linear_probe_accuracy(MultiTaskNet& model, const torch::Tensor& train_images, const torch::Tensor& train_labels,
                             const torch::Tensor& test_images, const torch::Tensor& test_labels, int64_t classes,
                             const ProbeOptions& options) {
  torch::NoGradGuard no_grad;
  model->eval();
  const auto subset = probe_subset(train_images.size(0), options.max_train_samples).to(train_images.device());
  RidgeFit fit(classes);
  for (int64_t start = 0; start < subset.size(0); start += options.batch_size) {
    const auto batch = subset.slice(0, start, std::min<int64_t>(start + options.batch_size, subset.size(0)));
    fit.add(pooled_features(model, train_images.index_select(0, batch)), train_labels.index_select(0, batch));
  }
  const LinearProbe probe = fit.solve(options.ridge);
  int64_t correct = 0;
  const int64_t tested = options.max_test_samples > 0 ? std::min(options.max_test_samples, test_images.size(0))
                                                      : test_images.size(0);
  for (int64_t start = 0; start < tested; start += options.batch_size) {
    const int64_t end = std::min<int64_t>(start + options.batch_size, tested);
    const auto predicted = probe.predict(pooled_features(model, test_images.slice(0, start, end)));
    correct += predicted.eq(test_labels.slice(0, start, end).to(torch::kInt64)).sum().item<int64_t>();
  }
  return tested > 0 ? static_cast<double>(correct) / static_cast<double>(tested) : 0.0;
}

}  // namespace mufl::fl
