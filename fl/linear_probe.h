#pragma once
// The linear probe that scores the self-supervised task `ssl` (docs/tasks.md): the encoder is
// frozen, a linear classifier from its globally pooled features (32 values per image: what the
// ssl head reads, as in SimSiam's evaluation of a ResNet) to the labels is fitted on the
// training set, and its accuracy on the test set is the task's metric.
//
// The classifier is ridge regression onto one-hot labels, solved in closed form from streamed
// sums (Σx, Σxxᵀ, Σxyᵀ in float64) on standardised features. Closed form, not SGD: it has no
// learning rate or epochs to tune, it is the exact optimum of its objective, it needs one pass
// over the features and a D×D solve (D = 32), and it is deterministic.
// Internal to fl/ (torch types). Thread safety: none; one probe per thread.
#include <torch/torch.h>

#include <cstdint>

#include "fl/model.h"

namespace mufl::fl {

// A fitted probe: predict(x) = argmax(x · weight + bias).
struct LinearProbe {
  torch::Tensor weight;  // float32 [D, classes], standardisation folded in
  torch::Tensor bias;    // float32 [classes]
  // The predicted labels (int64 [N]) of features [N, D] (any float type, on the probe's device).
  torch::Tensor predict(const torch::Tensor& features) const;
};

// Sums for a ridge fit, batch by batch, so the features of a large training set never sit in
// memory at once.
class RidgeFit {
 public:
  explicit RidgeFit(int64_t classes) : classes_(classes) {}
  // Adds features [N, D] with labels int64 [N] in [0, classes). REQUIRES: the same D each time.
  void add(const torch::Tensor& features, const torch::Tensor& labels);
  // The probe that minimises Σ‖W·s(x) + b − onehot(y)‖² + ridge·n·‖W‖², where s standardises
  // each feature to mean 0 and variance 1 over the samples added (a feature whose variance
  // is below 1e-6 gets weight 0). REQUIRES: add() was called; ridge > 0.
  LinearProbe solve(double ridge) const;
  int64_t samples() const { return n_; }

 private:
  int64_t classes_;
  int64_t n_ = 0;
  torch::Tensor sum_, gram_, cross_, counts_;  // float64: Σx [D], Σxxᵀ [D,D], Σx·onehotᵀ [D,C], Σonehot [C]
};

struct ProbeOptions {
  // Training samples the probe fits on: the whole training set up to this many, else this many
  // drawn once with a fixed seed (the same subset for every job on the data set). Default 10,000:
  // all of synthetic's 4,000, a sixth of mnist's 60,000.
  int64_t max_train_samples = 10000;
  // Test samples it is scored on: the first this many of the test set; 0 is all of it.
  int64_t max_test_samples = 0;
  double ridge = 1e-2;   // the ridge penalty per sample on standardised features
  int batch_size = 500;  // images encoded at once
};

// The probe's test accuracy in [0, 1] for `model`'s encoder: fitted on (a subset of)
// train_images [N, C, H, W] with train_labels int64 [N] in [0, classes), scored on test_images
// with test_labels (all of them, or the first options.max_test_samples). The model is left in eval mode and unchanged. Blocks; throws
// c10::Error on mismatched shapes.
double linear_probe_accuracy(MultiTaskNet& model, const torch::Tensor& train_images, const torch::Tensor& train_labels,
                             const torch::Tensor& test_images, const torch::Tensor& test_labels, int64_t classes,
                             const ProbeOptions& options = {});

}  // namespace mufl::fl
